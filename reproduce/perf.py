"""Benchmark: what mt-repro adds to the libraries it calls, and how fast it samples and scores.

    python -m reproduce.perf                 # full run, writes results/perf/perf.{json,md}
    python -m reproduce.perf --quick         # a smaller, noisier run (minutes less)

One run, on the tiny preset's gold world (built on first use, then cached) and the same pairs and
prompts throughout, measures:

* E-step: our ``train_dpo`` vs the DPOTrainer loop a user would write with the same DPOConfig,
  rows and model; M-step: our ``train_reward_model`` vs a bare RewardTrainer loop. Runs are
  interleaved (ours, bare, ours, bare, ...) so machine load hits both alike; the ratio is the
  median of the per-round ratios, for the whole update and for ``train()`` alone.
* Generation: batched sampling vs one prompt per ``generate`` call, same prompts and Sampling.
* Scoring: batched RM scoring vs one pair at a time.
* Peak memory of each stage, each in a fresh subprocess (max RSS; GPU peak when there is one).

Timings are wall-clock medians; targets are in ``TARGETS``. Nothing here is a test: numbers vary
with the machine, so tests/test_perf.py only checks that every key is produced.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Keep library chatter (tokenizer fork warnings, hub lookups) out of the timings and the output.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from mt.chat import Messages  # noqa: E402
from mt.config import MTConfig, load_config  # noqa: E402

# (key, direction, bound): "max" means the measured value must not exceed the bound.
TARGETS = {
    "estep_update_ratio": ("max", 1.03),
    "mstep_update_ratio": ("max", 1.03),
    "generation_speedup": ("min", 5.0),
    "scoring_speedup": ("min", 5.0),
}
STAGES = ("generate", "score", "estep_ours", "estep_bare", "mstep_ours", "mstep_bare")
# Dense bf16 peak of one accelerator, for MFU; CPUs have no meaningful single number, so no MFU there.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class BenchInputs:
    """The data and models every measurement shares."""

    cfg: MTConfig
    policy: str
    reward: str
    prompts: list[Messages]
    pairs: list[dict[str, Any]]


def bench_inputs(num_prompts: int, num_pairs: int, cfg: MTConfig | None = None) -> BenchInputs:
    """The tiny preset's world: its pi_0, r_0, training prompts and r_0's gold-labelled pairs of pi_0 samples."""
    from mt.records import read_jsonl
    from mt.world import ensure_world

    cfg = cfg or load_config("tiny")
    world = ensure_world(cfg.world)
    prompts = [r["prompt"] for r in world.split("train")[:num_prompts]]
    pairs = [{"id": p["id"], "prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]}
             for p in read_jsonl(world.dir / "rm_train_pairs.jsonl")[:num_pairs]]
    return BenchInputs(cfg, world.policy, world.reward, prompts, pairs)


# ---------------------------------------------------------------- training: ours vs bare TRL
def timed_trainer(base: type, sink: dict[str, Any]) -> type:
    """``base`` with ``train()`` timed into ``sink``: the only way to see inside our update functions."""

    class Timed(base):
        def train(self, *args, **kwargs):
            start = time.perf_counter()
            out = super().train(*args, **kwargs)
            sink["train_s"] = time.perf_counter() - start
            # Counted after the update returns, so our side is not charged for the benchmark's own work;
            # the trainer itself is not kept, or its memory would outlive the update.
            sink["dataset"], sink["args"] = self.train_dataset, self.args
            return out

    Timed.__name__ = f"Timed{base.__name__}"
    return Timed


def trained_tokens(ds, args) -> int:
    """Tokens pushed through the trained model: both sides of every pair, every epoch, capped at max_length."""
    cap = args.max_length or 10**9
    if "prompt_ids" in ds.column_names:  # DPO: prompt + completion per side
        per_pair = [min(cap, len(p) + len(c)) + min(cap, len(p) + len(r))
                    for p, c, r in zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"], strict=True)]
    else:  # reward modelling: full conversations per side
        per_pair = [min(cap, len(c)) + min(cap, len(r)) for c, r in zip(ds["chosen_ids"], ds["rejected_ids"],
                                                                          strict=True)]
    return int(sum(per_pair) * args.num_train_epochs)


def _ours(update, trainer_base, model: str, section, inp: BenchInputs, out_dir: Path) -> dict[str, Any]:
    """One of our updates, timed as a whole and inside TRL's ``train()`` (the difference is our overhead)."""
    sink: dict[str, Any] = {}
    start = time.perf_counter()
    update(model, inp.pairs, section, inp.cfg.models, out_dir, inp.cfg.run.seed,
           trainer_cls=timed_trainer(trainer_base, sink))
    update_s = time.perf_counter() - start
    return {"update_s": update_s, "train_s": sink["train_s"], "tokens": trained_tokens(sink["dataset"], sink["args"])}


def estep_ours(inp: BenchInputs, out_dir: Path) -> dict[str, Any]:
    from trl import DPOTrainer

    from mt.updates import train_dpo

    return _ours(train_dpo, DPOTrainer, inp.policy, inp.cfg.estep, inp, out_dir)


def estep_bare(inp: BenchInputs, out_dir: Path) -> dict[str, Any]:
    """What a user would write with TRL alone: same DPOConfig, rows and model, then ``train()``."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from mt.modeling import torch_dtype
    from mt.updates import dpo_config

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(inp.policy)
    model = AutoModelForCausalLM.from_pretrained(inp.policy, dtype=torch_dtype(inp.cfg.models.dtype))
    rows = [{"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in inp.pairs]
    args = dpo_config(inp.cfg.estep, str(out_dir), inp.cfg.run.seed, len(rows))
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    train_start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - train_start
    update_s = time.perf_counter() - start
    return {"update_s": update_s, "train_s": train_s, "tokens": trained_tokens(trainer.train_dataset, trainer.args)}


def mstep_ours(inp: BenchInputs, out_dir: Path) -> dict[str, Any]:
    from trl import RewardTrainer

    from mt.updates import train_reward_model

    return _ours(train_reward_model, RewardTrainer, inp.reward, inp.cfg.mstep, inp, out_dir)


def mstep_bare(inp: BenchInputs, out_dir: Path) -> dict[str, Any]:
    """A bare RewardTrainer loop with our RewardConfig; it saves the model, as any user of an RM must."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from mt.modeling import torch_dtype
    from mt.updates import reward_config

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(inp.reward)
    model = AutoModelForSequenceClassification.from_pretrained(
        inp.reward, num_labels=1, dtype=torch_dtype(inp.cfg.models.dtype))
    rows = [{"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in inp.pairs]
    args = reward_config(inp.cfg.mstep, str(out_dir / "trainer"), inp.cfg.run.seed, len(rows))
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=tokenizer)
    train_start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - train_start
    trainer.save_model(str(out_dir / "model"))
    update_s = time.perf_counter() - start
    return {"update_s": update_s, "train_s": train_s, "tokens": trained_tokens(trainer.train_dataset, trainer.args)}


def run_quietly(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """One update in a scratch folder, with the trainers' printed logs swallowed (both sides alike)."""
    with tempfile.TemporaryDirectory(prefix="mt-perf-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, Path(tmp))


def compare_updates(ours: Callable, bare: Callable, inp: BenchInputs, repeats: int,
                    warmup: bool = True) -> dict[str, Any]:
    """Interleave ours and bare ``repeats`` times after one untimed warm-up of each; median per-round ratios."""
    if warmup:  # first calls pay one-off imports and allocator growth that neither side owns
        few = dataclasses.replace(inp, pairs=inp.pairs[:32])
        run_quietly(ours, few)
        run_quietly(bare, few)
    rounds = []
    for i in range(repeats):
        # Alternate who goes first, so a load change between the two runs of a round favours neither.
        pair = (ours, bare) if i % 2 == 0 else (bare, ours)
        results = {fn: run_quietly(fn, inp) for fn in pair}
        rounds.append({"ours": results[ours], "bare": results[bare]})
    return summarise_rounds(rounds)


def summarise_rounds(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds}
    for key in ("update_s", "train_s"):
        ratios = [r["ours"][key] / r["bare"][key] for r in rounds]
        out[key.replace("_s", "_ratio")] = statistics.median(ratios)
        out[key.replace("_s", "_ratio_spread")] = [min(ratios), max(ratios)]
        out[f"ours_{key}"] = statistics.median(r["ours"][key] for r in rounds)
        out[f"bare_{key}"] = statistics.median(r["bare"][key] for r in rounds)
    # What each side spends outside train(): loading, data preparation, saving, freeing memory.
    out["ours_outside_train_s"] = statistics.median(r["ours"]["update_s"] - r["ours"]["train_s"] for r in rounds)
    out["bare_outside_train_s"] = statistics.median(r["bare"]["update_s"] - r["bare"]["train_s"] for r in rounds)
    # train() is the same TRL code on both sides, so its ratio's spread is the noise floor; what our
    # code adds is the difference outside it, as a fraction of the bare update.
    out["overhead_fraction"] = (out["ours_outside_train_s"] - out["bare_outside_train_s"]) / out["bare_update_s"]
    out["train_tokens"] = rounds[-1]["ours"]["tokens"]
    out["train_tokens_per_s"] = out["train_tokens"] / out["ours_train_s"]
    return out


# ---------------------------------------------------------------- generation and scoring
def preset_sampling(inp: BenchInputs):
    from mt.generate import Sampling

    s = inp.cfg.sampling
    return Sampling(n=s.k, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens,
                    seed=inp.cfg.run.seed)


def bench_generation(inp: BenchInputs, repeats: int, batch_size: int, sweep: tuple[int, ...] = ()) -> dict[str, Any]:
    """Batched vs one prompt per call on one loaded model; speedup in new tokens per second."""
    from mt.generate import TransformersGenerator

    sampling = preset_sampling(inp)
    gen = TransformersGenerator(inp.policy, dtype=inp.cfg.models.dtype, batch_size=batch_size)
    gen.generate(inp.prompts[:batch_size], sampling)  # warm-up: first-call allocations and kernel choices
    runs: dict[str, list[dict[str, float]]] = {"batched": [], "single": []}
    for i in range(repeats):
        for mode in (("batched", "single") if i % 2 == 0 else ("single", "batched")):
            gen.batch_size = batch_size if mode == "batched" else 1
            runs[mode].append(generation_run(gen, inp.prompts, sampling))
    swept = {}
    for size in sweep:
        gen.batch_size = size
        run = generation_run(gen, inp.prompts, sampling)
        swept[str(size)] = run["tokens"] / run["seconds"]
    gen.close()
    out = summarise_throughput(runs, "tokens", {"prompts": len(inp.prompts), "k": sampling.n,
                                                "max_new_tokens": sampling.max_new_tokens, "batch_size": batch_size})
    out["sweep_tokens_per_s"] = swept
    return out


def generation_run(gen, prompts: list[Messages], sampling) -> dict[str, float]:
    before = gen.stats.new_tokens
    start = time.perf_counter()
    gen.generate(prompts, sampling)
    return {"seconds": time.perf_counter() - start, "tokens": gen.stats.new_tokens - before}


def bench_scoring(inp: BenchInputs, repeats: int, batch_size: int, sweep: tuple[int, ...] = ()) -> dict[str, Any]:
    """Batched vs one pair at a time on one loaded RM; a pair is its chosen and its rejected response scored."""
    from mt.reward import TransformersRewardScorer

    scorer = TransformersRewardScorer(inp.reward, dtype=inp.cfg.models.dtype, batch_size=batch_size)
    prompts = [p["prompt"] for p in inp.pairs] * 2
    responses = [p["chosen"] for p in inp.pairs] + [p["rejected"] for p in inp.pairs]
    scorer.score(prompts[:batch_size], responses[:batch_size])  # warm-up
    runs: dict[str, list[dict[str, float]]] = {"batched": [], "single": []}
    for i in range(repeats):
        for mode in (("batched", "single") if i % 2 == 0 else ("single", "batched")):
            scorer.batch_size = batch_size if mode == "batched" else 1
            runs[mode].append(scoring_run(scorer, prompts, responses))
    swept = {}
    for size in sweep:
        scorer.batch_size = size
        run = scoring_run(scorer, prompts, responses)
        swept[str(size)] = run["pairs"] / run["seconds"]
    scorer.close()
    out = summarise_throughput(runs, "pairs", {"pairs": len(inp.pairs), "batch_size": batch_size})
    out["sweep_pairs_per_s"] = swept
    return out


def scoring_run(scorer, prompts: list[Messages], responses: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    scorer.score(prompts, responses)
    return {"seconds": time.perf_counter() - start, "pairs": len(prompts) // 2}


def summarise_throughput(runs: dict[str, list[dict[str, float]]], unit: str, setup: dict) -> dict[str, Any]:
    """Per mode: median seconds and units/s; speedup = median of per-round throughput ratios."""
    rate = {m: [r[unit] / r["seconds"] for r in rs] for m, rs in runs.items()}
    ratios = [b / s for b, s in zip(rate["batched"], rate["single"], strict=True)]
    out: dict[str, Any] = {"setup": setup, "runs": runs, "speedup": statistics.median(ratios),
                           "speedup_spread": [min(ratios), max(ratios)]}
    for mode in runs:
        out[f"{mode}_{unit}_per_s"] = statistics.median(rate[mode])
        out[f"{mode}_s"] = statistics.median(r["seconds"] for r in runs[mode])
    return out


# ---------------------------------------------------------------- peak memory, one stage per process
def run_stage(stage: str, inp: BenchInputs, batch_size: int) -> dict[str, Any]:
    """Run one stage once in this process and report its time and peak memory."""
    baseline = max_rss_mb()
    start = time.perf_counter()
    if stage == "generate":
        generate_once(inp, batch_size)
    elif stage == "score":
        score_once(inp, batch_size)
    else:
        fn = {"estep_ours": estep_ours, "estep_bare": estep_bare,
              "mstep_ours": mstep_ours, "mstep_bare": mstep_bare}[stage]
        run_quietly(fn, inp)
    return {"stage": stage, "seconds": time.perf_counter() - start, "rss_before_mb": baseline,
            "peak_rss_mb": max_rss_mb(), "gpu_peak_mb": gpu_peak_mb()}


def generate_once(inp: BenchInputs, batch_size: int) -> None:
    """The E-step sampling stage as the loop runs it: load, sample K per prompt, free."""
    from mt.generate import load_generator

    s, m = inp.cfg.sampling, inp.cfg.models
    gen = load_generator(s.backend, inp.policy, dtype=m.dtype, batch_size=batch_size,
                         tensor_parallel_size=s.tensor_parallel_size,
                         gpu_memory_utilization=s.gpu_memory_utilization, seed=inp.cfg.run.seed)
    gen.generate(inp.prompts, preset_sampling(inp))
    gen.close()


def score_once(inp: BenchInputs, batch_size: int) -> None:
    """The scoring stage as the loop runs it: load, score both sides of every pair, free."""
    from mt.reward import load_scorer

    scorer = load_scorer(inp.reward, dtype=inp.cfg.models.dtype, batch_size=batch_size)
    scorer.score([p["prompt"] for p in inp.pairs] * 2,
                 [p["chosen"] for p in inp.pairs] + [p["rejected"] for p in inp.pairs])
    scorer.close()


def max_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's VmHWM belongs to the process image, so a child started by a big parent reports its own
    peak; ``ru_maxrss`` would carry the parent's over through fork and exec.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def gpu_peak_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def stage_memory(stage: str, opts: BenchOptions) -> dict[str, Any]:
    """One stage in a fresh interpreter, so its peak is its own and not the benchmark's."""
    cmd = [sys.executable, "-m", "reproduce.perf", "--stage", stage, *opts.argv()]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode:
        raise RuntimeError(f"stage {stage} failed in its subprocess:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the report
@dataclass
class BenchOptions:
    """What one benchmark run measures; the defaults are the full run the README quotes."""

    prompts: int = 128
    pairs: int = 512
    repeats: int = 5
    preset: str = "tiny"
    batch_size: int | None = None  # None = the preset's sampling.batch_size, as the loop uses it
    threads: int | None = None  # None = torch's default (one per core)
    memory: bool = True
    sweep: tuple[int, ...] = (16, 64, 256)
    warmup: bool = True

    def argv(self) -> list[str]:
        """The options a stage subprocess needs to see the same inputs."""
        out = ["--prompts", str(self.prompts), "--pairs", str(self.pairs), "--preset", self.preset]
        if self.batch_size:
            out += ["--batch-size", str(self.batch_size)]
        if self.threads:
            out += ["--threads", str(self.threads)]
        return out


def environment() -> dict[str, Any]:
    import torch

    from mt.rundir import git_commit, versions

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": gpu, "versions": versions(),
            "git_commit": git_commit(), "load_average_start": load_average()}


def load_average() -> list[float] | None:
    """Other processes' load shows here: timings on a shared machine mean little without it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def mfu(tokens_per_s: float, params: int, gpu: str | None) -> float | None:
    """Model FLOPs utilisation of training, 6 * params FLOPs per token; None off a known accelerator."""
    peak = next((v for k, v in PEAK_FLOPS.items() if gpu and k in gpu), None)
    return 6 * params * tokens_per_s / peak if peak else None


def count_params(path: str) -> int:
    """Parameters stored in a checkpoint folder, read from safetensors headers without loading weights."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(path) / "model.safetensors"), "pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            n = 1
            for d in f.get_slice(name).get_shape():
                n *= d
            total += n
    return total


def headline(report: dict[str, Any]) -> dict[str, float]:
    return {
        "estep_update_ratio": report["estep"]["update_ratio"],
        "mstep_update_ratio": report["mstep"]["update_ratio"],
        "generation_speedup": report["generation"]["speedup"],
        "scoring_speedup": report["scoring"]["speedup"],
    }


def verdicts(values: dict[str, float]) -> dict[str, bool]:
    return {k: (v <= TARGETS[k][1] if TARGETS[k][0] == "max" else v >= TARGETS[k][1]) for k, v in values.items()}


def markdown(report: dict[str, Any]) -> str:
    """The short tables of results/perf/perf.md."""
    e, m, g, s = (report[k] for k in ("estep", "mstep", "generation", "scoring"))
    ok, env = report["meets_target"], report["environment"]

    def met(key: str) -> str:
        return "yes" if ok[key] else "**no**"

    def spread(lo_hi: list[float]) -> str:
        return f"{lo_hi[0]:.3f}-{lo_hi[1]:.3f}"

    device = f"GPU {env['gpu']}" if env["gpu"] else "no GPU"
    lines = [
        f"Measured {report['finished_at']} on {env['cpu_count']} CPU cores ({device}), torch threads "
        f"{env['torch_threads']}, load average {env['load_average_start']} at start and "
        f"{report['load_average_end']} at end; {report['inputs']['pairs']} pairs, {report['inputs']['prompts']} "
        f"prompts x K={g['setup']['k']}; {report['repeats']} interleaved rounds, median (min-max).",
        "",
        "| measurement | value | spread | target | met |",
        "|---|---|---|---|---|",
        f"| E-step update, ours / bare DPOTrainer | {e['update_ratio']:.3f} | {spread(e['update_ratio_spread'])} "
        f"| <= 1.03 | {met('estep_update_ratio')} |",
        f"| E-step `train()` alone, ours / bare | {e['train_ratio']:.3f} | {spread(e['train_ratio_spread'])} | | |",
        f"| E-step seconds outside `train()`, ours / bare (our overhead) | {e['ours_outside_train_s']:.2f} / "
        f"{e['bare_outside_train_s']:.2f} ({e['overhead_fraction']:+.1%}) | | | |",
        f"| M-step update, ours / bare RewardTrainer | {m['update_ratio']:.3f} | {spread(m['update_ratio_spread'])} "
        f"| <= 1.03 | {met('mstep_update_ratio')} |",
        f"| M-step `train()` alone, ours / bare | {m['train_ratio']:.3f} | {spread(m['train_ratio_spread'])} | | |",
        f"| M-step seconds outside `train()`, ours / bare (our overhead) | {m['ours_outside_train_s']:.2f} / "
        f"{m['bare_outside_train_s']:.2f} ({m['overhead_fraction']:+.1%}) | | | |",
        f"| generation, batch {g['setup']['batch_size']} / one prompt per call | {g['speedup']:.2f}x "
        f"| {spread(g['speedup_spread'])} | >= 5x | {met('generation_speedup')} |",
        f"| generation tokens/s, batched (one at a time) | {g['batched_tokens_per_s']:.0f} "
        f"({g['single_tokens_per_s']:.0f}) | | | |",
        f"| scoring, batch {s['setup']['batch_size']} / one pair per call | {s['speedup']:.2f}x "
        f"| {spread(s['speedup_spread'])} | >= 5x | {met('scoring_speedup')} |",
        f"| scoring pairs/s, batched (one at a time) | {s['batched_pairs_per_s']:.0f} "
        f"({s['single_pairs_per_s']:.0f}) | | | |",
        f"| DPO / RM training tokens/s (ours) | {e['train_tokens_per_s']:.0f} / {m['train_tokens_per_s']:.0f} "
        "| | | |",
    ]
    if g["sweep_tokens_per_s"]:
        lines.append("| generation tokens/s by batch size | " + ", ".join(
            f"{k}: {v:.0f}" for k, v in g["sweep_tokens_per_s"].items()) + " | | | |")
        lines.append("| scoring pairs/s by batch size | " + ", ".join(
            f"{k}: {v:.0f}" for k, v in s["sweep_pairs_per_s"].items()) + " | | | |")
    if report["memory"]:
        lines += ["", "| stage, each in a fresh process | seconds | RSS after imports (MiB) | peak RSS (MiB) "
                  "| GPU peak (MiB) |", "|---|---|---|---|---|"]
        for row in report["memory"]:
            gpu = "-" if row["gpu_peak_mb"] is None else f"{row['gpu_peak_mb']:.0f}"
            lines.append(f"| {row['stage']} | {row['seconds']:.1f} | {row['rss_before_mb']:.0f} | "
                         f"{row['peak_rss_mb']:.0f} | {gpu} |")
    return "\n".join(lines) + "\n"


def run_benchmark(opts: BenchOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measurement, in one process (plus one subprocess per stage for memory); returns the report."""
    inp = bench_inputs(opts.prompts, opts.pairs, load_config(opts.preset))
    batch = opts.batch_size or inp.cfg.sampling.batch_size
    report: dict[str, Any] = {"preset": opts.preset, "repeats": opts.repeats, "environment": environment(),
                              "inputs": {"prompts": len(inp.prompts), "pairs": len(inp.pairs),
                                         "policy": inp.policy, "reward": inp.reward}}
    log(f"generation: {len(inp.prompts)} prompts x K={inp.cfg.sampling.k}, batch {batch} vs one at a time")
    report["generation"] = bench_generation(inp, opts.repeats, batch, opts.sweep)
    log(f"scoring: {len(inp.pairs)} pairs, batch {batch} vs one at a time")
    report["scoring"] = bench_scoring(inp, opts.repeats, batch, opts.sweep)
    log(f"E-step: train_dpo vs bare DPOTrainer on {len(inp.pairs)} pairs, {opts.repeats} rounds")
    report["estep"] = compare_updates(estep_ours, estep_bare, inp, opts.repeats, opts.warmup)
    log(f"M-step: train_reward_model vs bare RewardTrainer on {len(inp.pairs)} pairs, {opts.repeats} rounds")
    report["mstep"] = compare_updates(mstep_ours, mstep_bare, inp, opts.repeats, opts.warmup)
    gpu = report["environment"]["gpu"]
    for key, path in (("estep", inp.policy), ("mstep", inp.reward)):
        report[key]["params"] = count_params(path)
        report[key]["mfu"] = mfu(report[key]["train_tokens_per_s"], report[key]["params"], gpu)
    report["memory"] = []
    if opts.memory:
        for stage in STAGES:
            log(f"peak memory: {stage} in a fresh process")
            report["memory"].append(stage_memory(stage, opts))
    report["headline"] = headline(report)
    report["meets_target"] = verdicts(report["headline"])
    report["targets"] = {k: {"bound": b, "direction": d} for k, (d, b) in TARGETS.items()}
    report["load_average_end"] = load_average()
    report["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    from mt.records import atomic_write_text, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    return write_json(out_dir / "perf.json", report), atomic_write_text(out_dir / "perf.md", markdown(report))


def parse_args(argv: list[str] | None) -> tuple[BenchOptions, argparse.Namespace]:
    d = BenchOptions()
    parser = argparse.ArgumentParser(prog="python -m reproduce.perf", description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=d.prompts, help="prompts sampled (K each) by the generation bench")
    parser.add_argument("--pairs", type=int, default=d.pairs, help="pairs trained on and scored")
    parser.add_argument("--repeats", type=int, default=d.repeats, help="interleaved rounds per comparison")
    parser.add_argument("--preset", default=d.preset, help="config preset whose world and settings are used")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch of the batched side; default: the preset's sampling.batch_size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads; default: torch's choice")
    parser.add_argument("--out", type=Path, default=Path("results/perf"), help="folder for perf.json and perf.md")
    parser.add_argument("--quick", action="store_true", help="64 pairs, 32 prompts, 3 rounds, no sweep (noisier)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-stage peak-memory subprocesses")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio misses its target")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    opts = BenchOptions(args.prompts, args.pairs, args.repeats, args.preset, args.batch_size, args.threads,
                        not args.no_memory)
    if args.quick:
        opts.prompts, opts.pairs, opts.repeats, opts.sweep = 32, 64, 3, ()
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(argv)
    _quiet_libraries(opts.threads)
    if args.stage:  # a child of stage_memory: one stage, one JSON line
        inp = bench_inputs(opts.prompts, opts.pairs, load_config(opts.preset))
        print(json.dumps(run_stage(args.stage, inp, opts.batch_size or inp.cfg.sampling.batch_size)))
        return 0
    report = run_benchmark(opts)
    json_path, md_path = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 1 if args.check and not all(report["meets_target"].values()) else 0


def _quiet_libraries(threads: int | None) -> None:
    import warnings

    import datasets
    import torch
    import transformers

    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


if __name__ == "__main__":
    sys.exit(main())
