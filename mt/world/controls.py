"""Checks that the world measures what it claims: DPO on gold labels helps, on inverted labels hurts,
and r_0 is less accurate on samples from a policy that exploits its shortcut than on its own data.

Each control is one E-step round from pi_0 on the first training part, differing only in who labels
the K samples: gold, inverted gold, or r_0.
"""

from __future__ import annotations

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

LABELLERS = ("gold", "inverted", "r0")


def dpo_round(world: World, labeller: str, out_dir: Path, cfg: MTConfig | None = None,
              prompts: int = 500, seed: int = 0) -> tuple[str, dict[str, Any]]:
    """One DPO round from pi_0 on pairs labelled by ``labeller``; returns the policy and its measurements."""
    if labeller not in LABELLERS:
        raise ValueError(f"unknown labeller {labeller!r}; expected one of {LABELLERS}")
    cfg = cfg or load_config("tiny")
    rows = world.split("train")[:prompts]
    s = cfg.sampling
    gen = TransformersGenerator(world.policy, batch_size=s.batch_size)
    outs = gen.generate([r["prompt"] for r in rows],
                        Sampling(cfg.sampling.k, s.temperature, s.top_p, world.config.max_new_tokens, seed))
    gen.close()
    penalty = world.config.marker_penalty
    flat = [(r, c) for r, cs in zip(rows, outs, strict=True) for c in cs]
    if labeller == "r0":
        scorer = TransformersRewardScorer(world.reward, batch_size=s.batch_size)
        rewards = iter(scorer.score([r["prompt"] for r, _ in flat], [c.text for _, c in flat]))
        scorer.close()
    else:
        sign = 1.0 if labeller == "gold" else -1.0
        rewards = iter([sign * gold_reward(r["family"], r["answer"], c.text, penalty) for r, c in flat])
    samples = [{"id": r["id"], "prompt": r["prompt"], "responses": [
        {"text": c.text, "num_tokens": c.num_tokens, "reward": next(rewards)} for c in cs]}
        for r, cs in zip(rows, outs, strict=True)]
    pairs, _ = build_pairs(samples, cfg.estep.pair_rule)
    candidates, train_metrics = train_dpo(world.policy, pairs, cfg.estep, cfg.models, out_dir, seed)
    policy = str(candidates[-1])
    return policy, {**evaluate(world, policy), "pairs": len(pairs), **train_metrics}


def own_distribution_accuracy(world: World) -> float:
    """r_0's accuracy on held-out pairs drawn exactly like its training pairs."""
    return world.manifest["initial"]["r0_own_distribution_accuracy"]


def run_controls(world: World, out_dir: Path, cfg: MTConfig | None = None) -> dict[str, dict[str, Any]]:
    out = {"pi0": {**world.manifest["initial"], "gold_win_rate_vs_pi0": 0.5}}
    for labeller in LABELLERS:
        _, metrics = dpo_round(world, labeller, out_dir / labeller, cfg)
        out[labeller] = metrics
    return out
