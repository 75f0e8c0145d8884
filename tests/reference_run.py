"""A reduced Mutual-Taught run whose models and metric rows are pinned as a reference trajectory.

Untrained tiny models built in-process from fixed seeds, a prompt file, two iterations with every
stage (sampling, labelling, pairing, DPO with several candidates, selection, pseudo-pairs, the
filter, the held-out split, the RM update): the loop's whole wiring in about a minute. The record
(``tests/data/reference_trajectory.json``) holds the metric rows without timings and a SHA-256 per
tensor of the final policy and reward model, plus the environment it was made in. Regenerate it
only when a change is meant to move the trajectory: ``python -m tests.reference_run --write``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD = HERE / "data" / "reference_trajectory.json"
TIMING_KEYS = {"wall_time_s", "tokens_per_s", "finished_at", "finished_unix"}
# Every knob the trajectory depends on is pinned here, so a preset's later retuning does not move it.
OVERRIDES = [
    "models.dtype=float32", "data.max_prompt_tokens=64", "sampling.temperature=0.8", "sampling.top_p=0.95",
    "sampling.batch_size=16", "estep.learning_rate=1e-3", "estep.beta=0.5", "estep.max_length=64",
    "estep.gradient_checkpointing=false", "estep.logging_steps=1", "estep.warmup_ratio=0.1",
    "mstep.learning_rate=1e-3", "mstep.max_length=64", "mstep.gradient_checkpointing=false",
    "mstep.logging_steps=1", "mstep.eps=reward_std", "mstep.filter=true", "mstep.init=previous",
    "estep.pair_rule=mt", "estep.reference=previous", "select.enabled=true", "select.stop_rule=true",
    "data.selection_size=6", "sampling.k=4", "sampling.max_new_tokens=6", "estep.save_steps=2",
    "estep.global_batch_size=4", "estep.per_device_batch_size=4", "estep.epochs=2",
    "mstep.global_batch_size=4", "mstep.per_device_batch_size=4", "mstep.epochs=1",
    "mstep.samples_per_prompt=2", "mstep.heldout_fraction=0.2", "mstep.include_estep_pairs=true",
    "run.iterations=2", "select.tau=0.0", "run.seed=3",
]


def environment() -> dict[str, str]:
    """What decides whether the same code gives the same bits: library versions and the CPU's kernels."""
    import torch
    import transformers
    import trl

    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "machine": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": str(torch.get_num_threads())}


def tensor_digests(folder: Path) -> dict[str, str]:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    return {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()[:16] for k, v in sorted(tensors.items())}


def run_reference(workdir: Path) -> dict:
    """Run the reduced trajectory in ``workdir`` and return its record."""
    from mt.config import load_config
    from mt.loop import run_mutual_taught
    from mt.tiny import make_tiny_models

    policy, reward = make_tiny_models(workdir / "models", seed=11)
    prompts = workdir / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"task {i}: say {'ab' * (i % 3 + 1)}"}) + "\n"
                               for i in range(42)))
    cfg = load_config(None, overrides=[f"models.policy={policy}", f"models.reward={reward}",
                                         f"data.prompts={prompts}", *OVERRIDES])
    result = run_mutual_taught(cfg, workdir / "run")
    rows = [json.loads(line) for line in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    return {
        "rows": [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows],
        "final": {"policy": Path(result.policy).relative_to(workdir / "run").as_posix(),
                  "reward": Path(result.reward).relative_to(workdir / "run").as_posix()},
        "weights": {"policy": tensor_digests(Path(result.policy)), "reward": tensor_digests(Path(result.reward))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="Overwrite the committed record.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        record = run_reference(Path(tmp))
    record["environment"] = environment()
    if args.write:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RECORD}")
    else:
        json.dump(record, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
