"""E-step: sample K responses from pi_{t-1}, label them, build one preference pair per prompt, DPO.

Four stages, each resumable: ``estep_generate`` (K samples per prompt of the PM part),
``estep_score`` (Mutual-Taught labels with the current RM r_{t-1}), ``estep_pairs`` (the pair rule,
``mt.pair_rule``) and ``estep_train`` (DPO from pi_{t-1}; its checkpoints are the candidates of model
selection). A method changes who labels, how pairs are built or how the policy is updated by
giving other parts (``mt.method.Method``); the stages stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Models
from .env import require_gold
from .pair_rule import build_pairs
from .records import read_jsonl, write_jsonl
from .rundir import StageContext

if TYPE_CHECKING:
    from .method import Method, Run


# ---------------------------------------------------------------- Mutual-Taught's parts
def rm_labels(run: Run, t: int, models: Models, rows: list[dict], ctx: StageContext) -> tuple[list[list[float]], dict]:
    """One number per response, higher = better: the current reward model r_{t-1}'s score."""
    return run.engine.score_rows(models.reward, rows, f"iter {t} E-step: scoring with r_{t - 1}"), {}


def gold_labels(run: Run, t: int, models: Models, rows: list[dict], ctx: StageContext) -> tuple[list[list[float]], dict]:
    """The environment's gold reward of each response: an ideal annotator (a control; the gold world only)."""
    gold = require_gold(run.env, "label with")
    return [[gold(r, resp["text"]) for resp in r["responses"]] for r in rows], {"labeller": "gold"}


def rule_pairs(run: Run, t: int, scored: list[dict]) -> tuple[list[dict], dict]:
    """The configured pair rule (``estep.pair_rule``) over each prompt's scored responses."""
    rule = run.cfg.estep.pair_rule
    pairs, stats = build_pairs(scored, rule)
    return pairs, {**stats.as_dict(), "pair_rule": rule}


def dpo_update(run: Run, t: int, models: Models, pairs: list[dict], ctx: StageContext) -> tuple[list[Path], dict]:
    """DPO from the iteration's starting policy; the reference is that policy (paper) or pi_0."""
    reference = None if run.cfg.estep.reference == "previous" else run.initial.policy
    return run.engine.train_dpo(models.policy, pairs, ctx.dir / "candidates", ctx.seed, reference_path=reference)


@dataclass(frozen=True)
class SampledPairs:
    """Pairs from the policy's own samples: sample K, label, apply the pair rule (three stages)."""

    def __call__(self, run: Run, method: Method, t: int, models: Models, prompts: list[dict]) -> list[dict]:
        k = run.cfg.sampling.k
        samples = run.engine.sample_stage(t, "estep_generate", models.policy, prompts, k,
                                          f"iter {t} E-step: sampling K={k}")

        def score(ctx: StageContext):
            rows = read_jsonl(run.engine.rd.path(samples))
            rewards, extra = method.label(run, t, models, rows, ctx)
            for r, rs in zip(rows, rewards, strict=True):
                for resp, value in zip(r["responses"], rs, strict=True):
                    resp["reward"] = value
            write_jsonl(ctx.dir / "scored.jsonl", rows)
            flat = [v for rs in rewards for v in rs]
            return {"scored": ctx.rel(ctx.dir / "scored.jsonl")}, {"reward_mean": sum(flat) / len(flat), **extra}

        scored = run.engine.stage(t, "estep_score", score)["scored"]

        def pairs(ctx: StageContext):
            built, stats = method.make_pairs(run, t, read_jsonl(run.engine.rd.path(scored)))
            write_jsonl(ctx.dir / "pairs.jsonl", built)
            return {"pairs": ctx.rel(ctx.dir / "pairs.jsonl")}, stats

        return read_jsonl(run.engine.rd.path(run.engine.stage(t, "estep_pairs", pairs)["pairs"]))


# ---------------------------------------------------------------- the step
def estep(run: Run, method: Method, t: int, models: Models, prompts: list[dict]) -> tuple[list[str], list[dict]]:
    """The E-step of iteration t: its preference pairs, then the DPO update; returns (candidates, pairs)."""
    pairs = method.pair_source(run, method, t, models, prompts)
    if method.extra_pairs is not None:
        pairs = pairs + method.extra_pairs(run, method, t, models)

    def train(ctx: StageContext) -> tuple[dict[str, Any], dict[str, Any]]:
        candidates, metrics = method.policy_update(run, t, models, pairs, ctx)
        return {"candidates": [ctx.rel(c) for c in candidates]}, metrics

    return run.engine.stage(t, "estep_train", train)["candidates"], pairs
