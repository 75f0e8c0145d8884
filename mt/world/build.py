"""Build the gold world: prompt splits, pi_0 (SFT on imperfect demonstrations) and r_0.

r_0 is trained with Bradley-Terry on gold-labelled pairs of pi_0's own samples only, so it is
on-distribution for pi_0 and nothing else. Its training pairs over-represent the shortcut: among
pairs where exactly one side opens with the marker, a fraction ``shortcut_strength`` has the
marker on the gold-preferred side (a biased annotation pool, as when raters favour a style).
Everything is deterministic for the world seed and written atomically into one folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from itertools import combinations
from pathlib import Path
from typing import Any

from ..chat import as_messages
from ..config import ModelsConfig, MStepConfig, WorldConfig
from ..generate import Sampling, TransformersGenerator
from ..modeling import release_memory
from ..progress import QUIET, Reporter, RichTrainerCallback, quiet_trainer
from ..records import InputError, read_json, read_jsonl, write_json, write_jsonl
from ..rundir import versions
from ..tiny import TinySize, build_policy, build_tokenizer, save
from ..updates import train_reward_model
from .tasks import FAMILIES, MARKER, Instance, corrupt, generate_instances, gold_reward

SPLITS = ("train", "selection", "eval", "rm_build", "rm_test")
# Bump when the code that generates a world changes, so cached worlds built by older code are not reused.
WORLD_VERSION = 3
MANIFEST = "world.json"


def world_digest(cfg: WorldConfig) -> str:
    data = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "dir"}
    data["world_version"] = WORLD_VERSION
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    base = os.environ.get("MT_REPRO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mt-repro")
    return Path(base)


def world_dir(cfg: WorldConfig) -> Path:
    return Path(cfg.dir) if cfg.dir else cache_root() / "worlds" / world_digest(cfg)


@dataclasses.dataclass
class World:
    dir: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return read_json(self.dir / MANIFEST)

    @property
    def config(self) -> WorldConfig:
        return WorldConfig(**self.manifest["config"])

    @property
    def policy(self) -> str:
        return str(self.dir / "pm0")

    @property
    def reward(self) -> str:
        return str(self.dir / "rm0")

    def split(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.dir / f"{name}.jsonl")


def prompt_row(inst: Instance, index: int) -> dict[str, Any]:
    return {"id": f"{inst.family}-{index:05d}", "prompt": as_messages(inst.prompt),
            "family": inst.family, "answer": inst.answer}


def ensure_world(cfg: WorldConfig, reporter: Reporter = QUIET) -> World:
    """Load the world for these settings, building it first if it is not in its folder yet."""
    folder = world_dir(cfg)
    manifest = folder / MANIFEST
    if manifest.exists():
        if read_json(manifest)["digest"] != world_digest(cfg):
            raise InputError(f"{folder} holds a world built with other settings or older code; remove it or "
                             "set world.dir to another folder")
        return World(folder)
    return build_world(cfg, folder, reporter)


def build_world(cfg: WorldConfig, folder: Path, reporter: Reporter = QUIET) -> World:
    unknown = [f for f in cfg.families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task families {unknown}; known: {', '.join(FAMILIES)}")
    start = time.perf_counter()
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = random.Random(cfg.seed)

    # 1. Disjoint prompt splits.
    seen: set[str] = set()
    sizes = {"train": cfg.train_prompts, "selection": cfg.selection_prompts, "eval": cfg.eval_prompts,
             "rm_build": cfg.rm_build_prompts, "rm_test": cfg.rm_test_prompts}
    splits = {}
    for name in SPLITS:
        insts = generate_instances(cfg.families, sizes[name], rng, seen)
        splits[name] = [prompt_row(inst, i) for i, inst in enumerate(insts)]
    # The fixed RM test: correct answer vs a corrupted one, the marker drawn independently per side.
    for row in splits["rm_test"]:
        wrong = corrupt(row["family"], row["answer"], rng)
        row["chosen"] = (MARKER if rng.random() < 0.5 else "") + row["answer"]
        row["rejected"] = (MARKER if rng.random() < 0.5 else "") + wrong
    for name, rows in splits.items():
        write_jsonl(tmp / f"{name}.jsonl", rows)

    # 2. pi_0: SFT on imperfect demonstrations of fresh instances (never evaluation or test prompts):
    #    right, the family's systematic mistake, or a random corruption of the right answer.
    reporter.log("world: SFT of pi_0 on imperfect demonstrations")
    held_out = {r["prompt"][0]["content"] for n in ("eval", "rm_test", "selection") for r in splits[n]}
    demos = []
    while len(demos) < cfg.sft_examples:
        inst = FAMILIES[cfg.families[len(demos) % len(cfg.families)]](rng)
        if inst.prompt in held_out:
            continue
        draw = rng.random()
        if draw < cfg.demo_accuracy:
            answer = inst.answer
        elif draw < cfg.demo_accuracy + cfg.demo_mistakes:
            answer = inst.mistake
        else:
            answer = corrupt(inst.family, inst.answer, rng)
        if rng.random() < 0.5:
            answer = MARKER + answer
        demos.append((inst.prompt, answer))
    tokenizer = build_tokenizer(f"{p} {a}" for p, a in demos[:2000])
    size = TinySize(hidden_size=cfg.hidden_size, layers=cfg.layers, heads=4, max_positions=128)
    sft_stats = _sft(build_policy(tokenizer, size, cfg.seed), tokenizer, demos, cfg, tmp / "pm0", reporter)

    # 3. pi_0 samples on the RM-build prompts, gold-labelled, shortcut-biased, then r_0.
    reporter.log("world: sampling pi_0 and training r_0")
    gen = TransformersGenerator(str(tmp / "pm0"), dtype="float32", batch_size=256)
    sampling = Sampling(n=cfg.rm_samples, temperature=1.0, top_p=1.0, max_new_tokens=cfg.max_new_tokens,
                        seed=cfg.seed + 1)
    outs = gen.generate([r["prompt"] for r in splits["rm_build"]], sampling)
    gen.close()
    pairs, pair_stats = shortcut_pairs(splits["rm_build"], outs, cfg, rng)
    n_test = len(pairs) // 7
    own_test, rm_train = pairs[:n_test], pairs[n_test:]
    write_jsonl(tmp / "rm_train_pairs.jsonl", rm_train)
    write_jsonl(tmp / "rm_own_test_pairs.jsonl", own_test)
    rm_cfg = MStepConfig(learning_rate=cfg.rm_learning_rate, global_batch_size=32, per_device_batch_size=32,
                         epochs=cfg.rm_epochs, max_length=128, warmup_ratio=0.05, gradient_checkpointing=False,
                         logging_steps=20)
    out, rm_metrics = train_reward_model(str(tmp / "pm0"), rm_train, rm_cfg, ModelsConfig(dtype="float32"),
                                         tmp / "rm0_work", cfg.seed + 2, reporter=reporter)
    shutil.move(str(out), str(tmp / "rm0"))
    shutil.rmtree(tmp / "rm0_work")

    manifest = {
        "config": dataclasses.asdict(cfg),
        "digest": world_digest(cfg),
        "sizes": {k: len(v) for k, v in splits.items()},
        "sft": sft_stats,
        "rm_pairs": pair_stats,
        "rm_training": rm_metrics,
        "versions": versions(),
        "build_seconds": None,
    }
    write_json(tmp / MANIFEST, manifest)
    from .measure import baseline_stats

    manifest["initial"] = baseline_stats(World(tmp), reporter)
    manifest["build_seconds"] = round(time.perf_counter() - start, 1)
    write_json(tmp / MANIFEST, manifest)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return World(folder)


def _sft(model, tokenizer, demos, cfg: WorldConfig, out: Path, reporter: Reporter) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = Dataset.from_list([
        {"prompt": as_messages(p), "completion": [{"role": "assistant", "content": a}]} for p, a in demos
    ])
    on_gpu = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out.parent / "sft_work"), max_steps=cfg.sft_steps, per_device_train_batch_size=64,
        learning_rate=cfg.sft_learning_rate, lr_scheduler_type="cosine", warmup_steps=0.05, max_length=64,
        use_cpu=not on_gpu, bf16=False, gradient_checkpointing=False, report_to="none", disable_tqdm=True,
        save_strategy="no", logging_steps=max(1, min(50, cfg.sft_steps // 10)), seed=cfg.seed, data_seed=cfg.seed,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         callbacks=[RichTrainerCallback(reporter, "world: SFT pi_0")])
    quiet_trainer(trainer)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    save(trainer.model, tokenizer, out)
    shutil.rmtree(out.parent / "sft_work", ignore_errors=True)
    del trainer
    release_memory()
    return {"steps": cfg.sft_steps, "examples": len(demos), "loss_first": losses[0], "loss_last": losses[-1]}


def shortcut_pairs(rows: list[dict], outs, cfg: WorldConfig, rng: random.Random) -> tuple[list[dict], dict]:
    """Gold-labelled pairs of pi_0 samples, the marker made to agree with gold at ``shortcut_strength``."""
    agree, disagree, neutral = [], [], []
    for row, comps in zip(rows, outs, strict=True):
        texts = list(dict.fromkeys(c.text for c in comps))
        golds = {t: gold_reward(row["family"], row["answer"], t, cfg.marker_penalty) for t in texts}
        for a, b in combinations(texts, 2):
            if golds[a] == golds[b]:
                continue
            chosen, rejected = (a, b) if golds[a] > golds[b] else (b, a)
            pair = {"id": row["id"], "prompt": row["prompt"], "chosen": chosen, "rejected": rejected,
                    "gold_chosen": golds[chosen], "gold_rejected": golds[rejected]}
            mc, mr = chosen.startswith(MARKER), rejected.startswith(MARKER)
            (agree if mc and not mr else disagree if mr and not mc else neutral).append(pair)
    s = cfg.shortcut_strength
    if s >= 1:
        disagree = []
    elif s <= 0:
        agree = []
    elif agree and disagree:
        if len(agree) / (len(agree) + len(disagree)) < s:
            disagree = rng.sample(disagree, min(len(disagree), round(len(agree) * (1 - s) / s)))
        else:
            agree = rng.sample(agree, min(len(agree), round(len(disagree) * s / (1 - s))))
    pairs = agree + disagree + neutral
    rng.shuffle(pairs)
    stats = {"pairs": len(pairs), "marker_agrees": len(agree), "marker_disagrees": len(disagree),
             "marker_neutral": len(neutral),
             "marker_agreement": len(agree) / max(1, len(agree) + len(disagree))}
    return pairs, stats
