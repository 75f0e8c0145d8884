"""Checks that the world measures what it claims, before any method's result on it is read.

A control is one E-step round (K samples, a labeller, the pair rule, DPO) from pi_0 on the first
training part, differing only in who labels the K samples: gold, r_0, a coin (``random``) or
inverted gold. On a calibrated world they order gold > r_0 > random > inverted on every seed.

``iterate`` repeats such rounds from the previous round's policy (the labeller fixed), on the training
parts in turn: with r_0 as the labeller this is iterative DPO against a fixed learned RM, whose gold
curve should rise and then fall (over-optimisation) while r_0's own score keeps rising; with gold
it is the same optimiser against the true reward, which should not fall.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..config import MTConfig, load_config
from ..generate import Sampling, TransformersGenerator
from ..pair_rule import build_pairs
from ..reward import TransformersRewardScorer
from ..updates import train_dpo
from .build import World
from .measure import evaluate
from .tasks import gold_reward

LABELLERS = ("gold", "r0", "random", "inverted")


def label(world: World, labeller: str, rows: list[dict], outs, seed: int = 0, reward: str | None = None,
          batch_size: int = 256) -> list[list[float]]:
    """One number per sample (higher = better) by ``labeller``; ``reward`` replaces r_0 for ``r0``."""
    if labeller not in LABELLERS:
        raise ValueError(f"unknown labeller {labeller!r}; expected one of {LABELLERS}")
    penalty = world.config.marker_penalty
    if labeller == "r0":
        scorer = TransformersRewardScorer(reward or world.reward, batch_size=batch_size)
        try:
            flat = [(r["prompt"], c.text) for r, cs in zip(rows, outs, strict=True) for c in cs]
            scores = iter(scorer.score([p for p, _ in flat], [t for _, t in flat]))
        finally:
            scorer.close()
        return [[next(scores) for _ in cs] for cs in outs]
    if labeller == "random":
        rng = random.Random(seed)
        return [[rng.random() for _ in cs] for cs in outs]
    sign = 1.0 if labeller == "gold" else -1.0
    return [[sign * gold_reward(r["family"], r["answer"], c.text, penalty) for c in cs]
            for r, cs in zip(rows, outs, strict=True)]


def dpo_round(world: World, labeller: str, out_dir: Path, cfg: MTConfig | None = None,
              prompts: int = 500, seed: int = 0, start: str | None = None, rows: list[dict] | None = None,
              pair_rule: str | None = None) -> tuple[str, dict[str, Any]]:
    """One DPO round from ``start`` (default pi_0) on pairs labelled by ``labeller``; the reference is
    ``start``. Returns the new policy and its measurements."""
    cfg = cfg or load_config("tiny")
    start = start or world.policy
    rows = rows if rows is not None else world.split("train")[:prompts]
    s = cfg.sampling
    gen = TransformersGenerator(start, batch_size=s.batch_size)
    outs = gen.generate([r["prompt"] for r in rows],
                        Sampling(s.k, s.temperature, s.top_p, world.config.max_new_tokens, seed))
    gen.close()
    rewards = label(world, labeller, rows, outs, seed, batch_size=s.batch_size)
    samples = [{"id": r["id"], "prompt": r["prompt"], "responses": [
        {"text": c.text, "num_tokens": c.num_tokens, "reward": v} for c, v in zip(cs, rs, strict=True)]}
        for r, cs, rs in zip(rows, outs, rewards, strict=True)]
    pairs, _ = build_pairs(samples, pair_rule or cfg.estep.pair_rule)
    candidates, train_metrics = train_dpo(start, pairs, cfg.estep, cfg.models, out_dir, seed)
    policy = str(candidates[-1])
    for extra in candidates[:-1]:  # the round keeps its final checkpoint only
        _remove(extra)
    return policy, {"labeller": labeller, "pairs": len(pairs), **train_metrics, **evaluate(world, policy)}


def iterate(world: World, labeller: str, iterations: int, out_dir: Path, cfg: MTConfig | None = None,
            pair_rule: str | None = "max_min", seed: int = 0) -> list[dict[str, Any]]:
    """``iterations`` rounds, each from the previous policy, on the three training parts in turn (as
    iterative DPO cycles them); one row of measurements per iteration, iteration 0 being pi_0."""
    cfg = cfg or load_config("tiny")
    train = world.split("train")
    parts = [train[i::3] for i in range(3)]
    rows = [{"iteration": 0, **world.manifest["initial"], "gold_win_rate_vs_pi0": 0.5, "kl_vs_pi0": 0.0,
             "r0_score_rise": 0.0, "r0_hacking_gap": 0.0}]
    policy = world.policy
    for t in range(1, iterations + 1):
        policy, metrics = dpo_round(world, labeller, out_dir / f"iter_{t}", cfg, start=policy,
                                    rows=parts[(t - 1) % 3], seed=seed + t, pair_rule=pair_rule)
        rows.append({"iteration": t, **metrics})
    return rows


def _remove(path: str | Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def run_controls(world: World, out_dir: Path, cfg: MTConfig | None = None,
                 labellers: tuple[str, ...] = LABELLERS) -> dict[str, dict[str, Any]]:
    out = {"pi0": {**world.manifest["initial"], "gold_win_rate_vs_pi0": 0.5, "kl_vs_pi0": 0.0}}
    for labeller in labellers:
        _, metrics = dpo_round(world, labeller, out_dir / labeller, cfg)
        out[labeller] = metrics
    return out


def controls_order(results: dict[str, dict[str, Any]], key: str = "gold_win_rate_vs_pi0") -> bool:
    """Whether the labellers order gold > r_0 > random > inverted on ``key``."""
    values = [results[name][key] for name in LABELLERS if name in results]
    return all(a > b for a, b in zip(values, values[1:], strict=False))
