"""Build the gold world: prompt splits, pi_0 (SFT on imperfect demonstrations) and r_0.

Two regimes (``world.regime``):

- ``shift``: no spurious cue. The demonstrations never carry the marker; r_0 is good on pi_0's
  distribution and its errors off it are whatever a small learned verifier gets wrong.
- ``hack``: r_0 learns to reward the marker ``Sure! ``, which gold charges, so once the policy emits it
  freely r_0 is wrong about it. The cue is in the demonstrations (they open with the marker more often
  when they are right, so on pi_0's samples it goes with correctness; it then also steers the answer
  that follows) or in r_0's labels (``hack_label_bias``: pi_0 marks right and wrong answers alike and the
  labeller of r_0's pairs adds a bonus to a marked answer, so the marker is a pure shortcut).

r_0 is a one-logit classifier trained with Bradley-Terry on gold-labelled pairs of pi_0's *natural*
samples, drawn at the loop's sampling settings, with its own test pairs split off by prompt. Its
backbone is either pi_0's (``rm_backbone = "policy"``) or a larger tiny Llama pretrained with the LM
objective on correct demonstrations (``"pretrained"``), so it knows the tasks well enough to check
pi_0's answers; it shares pi_0's tokenizer. Everything is deterministic for the world seed (and the
package set, which the manifest records) and written atomically into one folder.
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
from ..generate import Sampling, TransformersGenerator
from ..modeling import release_memory
from ..progress import QUIET, Reporter
from ..records import InputError, read_json, read_jsonl, write_json, write_jsonl
from ..rundir import versions
from ..tiny import TinySize, build_policy, build_tokenizer, save
from .config import WorldConfig
from .tasks import FAMILIES, MARKER, Instance, corrupt, generate_instances, gold_reward

SPLITS = ("train", "selection", "eval", "rm_build", "rm_test")
REGIMES = ("shift", "hack")
# Bump when the code that generates a world changes, so cached worlds built by older code are not reused.
WORLD_VERSION = 4
MANIFEST = "world.json"
# The loop's sampling settings (the tiny preset's `sampling`): r_0's pairs and every evaluation use them.
SAMPLE_TEMPERATURE, SAMPLE_TOP_P = 0.8, 0.95


# Fields added after WORLD_VERSION 4, with the default that does what the code did before them: left out
# of the digest at that default, so every world built before keeps its digest (and its cached folder).
LATER_FIELDS = {"hack_label_bias": 0.0}


def world_digest(cfg: WorldConfig) -> str:
    data = {k: v for k, v in dataclasses.asdict(cfg).items()
            if k != "dir" and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
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
    def regime(self) -> str:
        return self.manifest["config"]["regime"]

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


def check_config(cfg: WorldConfig) -> None:
    unknown = [f for f in cfg.families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task families {unknown}; known: {', '.join(FAMILIES)}")
    if cfg.regime not in REGIMES:
        raise ValueError(f"world.regime={cfg.regime!r}: expected one of {', '.join(REGIMES)}")
    if cfg.rm_backbone not in ("policy", "pretrained"):
        raise ValueError(f"world.rm_backbone={cfg.rm_backbone!r}: expected policy or pretrained")
    if not 1 <= own_test_prompts(cfg) < cfg.rm_build_prompts:
        raise ValueError("world.rm_own_test_share leaves no RM-build prompts for r_0's test or its training")


def own_test_prompts(cfg: WorldConfig) -> int:
    return round(cfg.rm_build_prompts * cfg.rm_own_test_share)


def make_splits(cfg: WorldConfig, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Disjoint prompt splits; the fixed RM test pairs a correct answer with a corrupted one."""
    seen: set[str] = set()
    sizes = {"train": cfg.train_prompts, "selection": cfg.selection_prompts, "eval": cfg.eval_prompts,
             "rm_build": cfg.rm_build_prompts, "rm_test": cfg.rm_test_prompts}
    splits = {}
    for name in SPLITS:
        insts = generate_instances(cfg.families, sizes[name], rng, seen)
        splits[name] = [prompt_row(inst, i) for i, inst in enumerate(insts)]
    # The fixed RM test (the RewardBench analogue): right vs corrupted. In the hack regime the marker is
    # drawn independently per side, so the test also shows whether r_0 leans on the cue.
    for row in splits["rm_test"]:
        wrong = corrupt(row["family"], row["answer"], rng)
        marked = cfg.regime == "hack"
        row["chosen"] = (MARKER if marked and rng.random() < 0.5 else "") + row["answer"]
        row["rejected"] = (MARKER if marked and rng.random() < 0.5 else "") + wrong
    return splits


def make_demos(cfg: WorldConfig, rng: random.Random, held_out: set[str]) -> list[tuple[str, str]]:
    """Imperfect demonstrations of fresh instances: right, the family's systematic mistake, or a random
    corruption of the right answer; in the hack regime the marker goes with being right."""
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
        if cfg.regime == "hack":
            p = cfg.hack_marker_right if answer == inst.answer else cfg.hack_marker_wrong
            if rng.random() < p:
                answer = MARKER + answer
        demos.append((inst.prompt, answer))
    return demos


def correct_demos(cfg: WorldConfig, rng: random.Random, held_out: set[str], count: int) -> list[tuple[str, str]]:
    """Right answers only (no marker): the corpus r_0's backbone learns the tasks from."""
    out = []
    while len(out) < count:
        inst = FAMILIES[cfg.families[len(out) % len(cfg.families)]](rng)
        if inst.prompt not in held_out:
            out.append((inst.prompt, inst.answer))
    return out


def build_world(cfg: WorldConfig, folder: Path, reporter: Reporter = QUIET) -> World:
    check_config(cfg)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = random.Random(cfg.seed)

    # 1. Disjoint prompt splits.
    splits = make_splits(cfg, rng)
    for name, rows in splits.items():
        write_jsonl(tmp / f"{name}.jsonl", rows)

    # 2. pi_0: SFT on imperfect demonstrations of fresh instances (never evaluation, selection or test prompts).
    reporter.log(f"world ({cfg.regime}): SFT of pi_0 on imperfect demonstrations")
    held_out = {r["prompt"][0]["content"] for n in ("eval", "rm_test", "selection") for r in splits[n]}
    demos = make_demos(cfg, rng, held_out)
    tokenizer = build_tokenizer(f"{p} {a}" for p, a in demos[:2000])
    size = TinySize(hidden_size=cfg.hidden_size, layers=cfg.layers, heads=4, max_positions=128)
    t0 = time.perf_counter()
    sft_stats = _sft(build_policy(tokenizer, size, cfg.seed), tokenizer, demos, cfg.sft_steps,
                     cfg.sft_learning_rate, cfg.seed, tmp / "pm0", reporter, "world: SFT pi_0")
    timings["sft_pi0"] = time.perf_counter() - t0

    # 3. r_0's backbone: pi_0's, or a larger LM that learned the tasks from right answers.
    t0 = time.perf_counter()
    backbone_stats: dict[str, Any] = {"backbone": cfg.rm_backbone}
    if cfg.rm_backbone == "pretrained":
        reporter.log("world: pretraining r_0's backbone on right answers")
        corpus = correct_demos(cfg, rng, held_out, cfg.rm_pretrain_examples)
        rm_size = TinySize(hidden_size=cfg.rm_hidden_size, layers=cfg.rm_layers, heads=4, max_positions=128)
        backbone_stats.update(_sft(build_policy(tokenizer, rm_size, cfg.seed + 3), tokenizer, corpus,
                                   cfg.rm_pretrain_steps, cfg.rm_pretrain_learning_rate, cfg.seed + 3,
                                   tmp / "rm_backbone", reporter, "world: pretrain r_0 backbone"))
        backbone_stats.update(hidden_size=cfg.rm_hidden_size, layers=cfg.rm_layers)
        backbone = tmp / "rm_backbone"
    else:
        backbone = tmp / "pm0"
    timings["rm_backbone"] = time.perf_counter() - t0

    # 4. pi_0's natural samples on the RM-build prompts, gold-labelled; the own test is split by prompt.
    reporter.log("world: sampling pi_0 and training r_0")
    t0 = time.perf_counter()
    gen = TransformersGenerator(str(tmp / "pm0"), dtype="float32", batch_size=256)
    sampling = Sampling(n=cfg.rm_samples, temperature=SAMPLE_TEMPERATURE, top_p=SAMPLE_TOP_P,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 1)
    outs = gen.generate([r["prompt"] for r in splits["rm_build"]], sampling)
    gen.close()
    n_test = own_test_prompts(cfg)
    build_rows = splits["rm_build"]
    rm_train, train_stats = natural_pairs(build_rows[n_test:], outs[n_test:], cfg.marker_penalty,
                                          cfg.hack_label_bias)
    own_test, test_stats = natural_pairs(build_rows[:n_test], outs[:n_test], cfg.marker_penalty,
                                         cfg.hack_label_bias)
    rng.shuffle(rm_train)
    write_jsonl(tmp / "rm_train_pairs.jsonl", rm_train)
    write_jsonl(tmp / "rm_own_test_pairs.jsonl", own_test)
    timings["rm_pairs"] = time.perf_counter() - t0

    # 5. r_0: Bradley-Terry on those pairs.
    t0 = time.perf_counter()
    rm_metrics = train_r0(str(backbone), tokenizer, rm_train, cfg, tmp / "rm0")
    if backbone != tmp / "pm0":
        shutil.rmtree(backbone)
    timings["rm_train"] = time.perf_counter() - t0

    manifest = {
        "config": dataclasses.asdict(cfg),
        "regime": cfg.regime,
        "digest": world_digest(cfg),
        "world_version": WORLD_VERSION,
        "sizes": {k: len(v) for k, v in splits.items()},
        "sft": sft_stats,
        "rm_backbone": backbone_stats,
        "rm_pairs": {**train_stats, "own_test_pairs": test_stats["pairs"], "own_test_prompts": n_test},
        "rm_training": rm_metrics,
        "versions": versions(),
        "packages": package_set(),
        "build_seconds": None,
    }
    write_json(tmp / MANIFEST, manifest)
    from .measure import baseline_stats

    t0 = time.perf_counter()
    manifest["initial"] = baseline_stats(World(tmp))
    timings["baseline"] = time.perf_counter() - t0
    manifest["fingerprint"] = fingerprint(tmp, manifest["initial"])
    manifest["build_seconds"] = round(time.perf_counter() - start, 1)
    manifest["build_timings"] = {k: round(v, 1) for k, v in timings.items()}
    write_json(tmp / MANIFEST, manifest)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return World(folder)


def _sft(model, tokenizer, demos, steps: int, learning_rate: float, seed: int, out: Path, reporter: Reporter,
         what: str) -> dict[str, Any]:
    from .train import sft

    reporter.log(f"{what}: {steps} steps")
    stats = sft(model, tokenizer, demos, steps, learning_rate, seed)
    save(model, tokenizer, out)
    del model
    release_memory()
    return stats


def train_r0(backbone: str, tokenizer, pairs: list[dict], cfg: WorldConfig, out: Path) -> dict[str, Any]:
    """r_0: a one-logit head on ``backbone`` (its score head seeded), fitted by Bradley-Terry on ``pairs``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from .train import bradley_terry

    torch.manual_seed(cfg.seed + 2)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    stats = bradley_terry(model, tokenizer, pairs, cfg.rm_epochs, cfg.rm_learning_rate, cfg.seed + 2)
    save(model, tokenizer, out)
    del model
    release_memory()
    return stats


def natural_pairs(rows: list[dict], outs, marker_penalty: float, label_bias: float = 0.0) -> tuple[list[dict], dict]:
    """Every within-prompt pair of distinct samples whose labels differ, the better one chosen. The label is
    gold, plus ``label_bias`` for a marked response (the hack regime's biased labeller)."""
    pairs = []
    families: dict[str, int] = {}
    for row, comps in zip(rows, outs, strict=True):
        texts = list(dict.fromkeys(c.text for c in comps))
        golds = {t: gold_reward(row["family"], row["answer"], t, marker_penalty) for t in texts}
        labels = {t: g + (label_bias if t.startswith(MARKER) else 0.0) for t, g in golds.items()}
        for a, b in combinations(texts, 2):
            if labels[a] == labels[b]:
                continue
            chosen, rejected = (a, b) if labels[a] > labels[b] else (b, a)
            pairs.append({"id": row["id"], "prompt": row["prompt"], "family": row["family"], "chosen": chosen,
                          "rejected": rejected, "gold_chosen": golds[chosen], "gold_rejected": golds[rejected]})
            families[row["family"]] = families.get(row["family"], 0) + 1
    marked = [(p["chosen"].startswith(MARKER), p["rejected"].startswith(MARKER)) for p in pairs]
    agree, disagree = sum(c and not r for c, r in marked), sum(r and not c for c, r in marked)
    stats = {"pairs": len(pairs), "prompts_with_pairs": len({p["id"] for p in pairs}), "by_family": families,
             "marker_agrees": agree, "marker_disagrees": disagree,
             "marker_agreement": agree / (agree + disagree) if agree + disagree else None,
             "against_gold": sum(p["gold_chosen"] <= p["gold_rejected"] for p in pairs)}
    return pairs, stats


def package_set() -> dict[str, str]:
    """Every installed distribution and its version: what a world's numbers may depend on."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():  # in sys.path order: the first copy of a name is the one imported
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower().replace("_", "-"), dist.version)
    return dict(sorted(found.items()))


def fingerprint(folder: Path, initial: dict[str, Any]) -> dict[str, str]:
    """Short digests of the initial models' weights and of the world's measured numbers: two environments
    that build the same world agree on all three."""
    def file_digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    numbers = json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in sorted(initial.items())},
                         sort_keys=True)
    return {"pm0": file_digest(folder / "pm0" / "model.safetensors"),
            "rm0": file_digest(folder / "rm0" / "model.safetensors"),
            "pi0_eval": file_digest(folder / "pi0_eval.jsonl"),
            "numbers": hashlib.sha256(numbers.encode()).hexdigest()[:16]}
