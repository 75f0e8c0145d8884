"""What the gold world can measure and no real benchmark shows directly.

- gold reward of a policy on the evaluation split (mean, per family);
- gold win rate against pi_0 (the AlpacaEval analogue: same prompts, tie = half);
- RM accuracy against gold on pairs of a given policy's own samples (on-policy accuracy, the
  quantity the paper says decays as the policy moves);
- RM accuracy on the fixed gold-labelled test set (the RewardBench analogue);
- the hacking gap: the RM's standardised score rise from pi_0 minus gold's standardised rise.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..generate import Sampling, TransformersGenerator
from ..progress import QUIET, Reporter
from ..records import read_jsonl, write_jsonl
from ..reward import TransformersRewardScorer
from .build import World
from .tasks import MARKER, gold_reward

EVAL_TEMPERATURE, EVAL_TOP_P = 0.8, 0.95


def eval_sampling(world: World) -> Sampling:
    cfg = world.config
    return Sampling(n=cfg.eval_samples, temperature=EVAL_TEMPERATURE, top_p=EVAL_TOP_P,
                    max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 7)


def sample_graded(world: World, policy: str, rows: Sequence[dict], sampling: Sampling) -> list[list[dict]]:
    """Sample ``policy`` on ``rows`` and attach each completion's gold reward."""
    gen = TransformersGenerator(policy, batch_size=256)
    try:
        outs = gen.generate([r["prompt"] for r in rows], sampling)
    finally:
        gen.close()
    penalty = world.config.marker_penalty
    return [[{"text": c.text, "gold": gold_reward(r["family"], r["answer"], c.text, penalty)} for c in comps]
            for r, comps in zip(rows, outs, strict=True)]


def score_texts(scorer: TransformersRewardScorer, rows: Sequence[dict], graded: list[list[dict]]) -> list[list[float]]:
    flat = [(r["prompt"], c["text"]) for r, comps in zip(rows, graded, strict=True) for c in comps]
    scores = iter(scorer.score([p for p, _ in flat], [t for _, t in flat]))
    return [[next(scores) for _ in comps] for comps in graded]


def pair_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Strictly higher score for the gold-preferred side; a tie is wrong (as in RewardBench)."""
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / max(1, len(chosen))


def onpolicy_accuracy(graded: list[list[dict]], scores: list[list[float]]) -> tuple[float, int]:
    """RM accuracy on every within-prompt pair of samples whose gold rewards differ."""
    right, total = 0, 0
    for comps, sc in zip(graded, scores, strict=True):
        for i in range(len(comps)):
            for j in range(i + 1, len(comps)):
                gi, gj = comps[i]["gold"], comps[j]["gold"]
                if gi == gj:
                    continue
                total += 1
                right += (sc[i] > sc[j]) if gi > gj else (sc[j] > sc[i])
    return (right / total if total else float("nan")), total


def gold_win_rate(graded: list[list[dict]], baseline: list[list[dict]]) -> float:
    wins, n = 0.0, 0
    for a, b in zip(graded, baseline, strict=True):
        for x, y in zip(a, b, strict=True):
            wins += 1.0 if x["gold"] > y["gold"] else 0.5 if x["gold"] == y["gold"] else 0.0
            n += 1
    return wins / n


def fixed_test_accuracy(scorer: TransformersRewardScorer, world: World) -> float:
    rows = world.split("rm_test")
    prompts = [r["prompt"] for r in rows]
    chosen = scorer.score(prompts, [r["chosen"] for r in rows])
    rejected = scorer.score(prompts, [r["rejected"] for r in rows])
    return pair_accuracy(chosen, rejected)


def _mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def _flat(nested: list[list[Any]]) -> list[Any]:
    return [x for inner in nested for x in inner]


def policy_stats(world: World, rows: Sequence[dict], graded: list[list[dict]]) -> dict[str, Any]:
    golds = _flat([[c["gold"] for c in comps] for comps in graded])
    out: dict[str, Any] = {"gold_mean": _mean(golds)}
    for fam in world.config.families:
        out[f"gold_{fam}"] = _mean([c["gold"] for r, comps in zip(rows, graded, strict=True)
                                    if r["family"] == fam for c in comps])
    texts = _flat([[c["text"] for c in comps] for comps in graded])
    out["marker_rate"] = _mean([t.startswith(MARKER) for t in texts])
    out["response_chars"] = _mean([len(t) for t in texts])
    return out


def baseline_stats(world: World, reporter: Reporter = QUIET) -> dict[str, Any]:
    """pi_0's evaluation samples (cached for win rates) and r_0's numbers, stored in the manifest."""
    rows = world.split("eval")
    graded = sample_graded(world, world.policy, rows, eval_sampling(world))
    scorer = TransformersRewardScorer(world.reward, batch_size=256)
    try:
        scores = score_texts(scorer, rows, graded)
        own = read_jsonl(world.dir / "rm_own_test_pairs.jsonl")
        own_acc = pair_accuracy(scorer.score([p["prompt"] for p in own], [p["chosen"] for p in own]),
                                scorer.score([p["prompt"] for p in own], [p["rejected"] for p in own]))
        fixed = fixed_test_accuracy(scorer, world)
    finally:
        scorer.close()
    write_jsonl(world.dir / "pi0_eval.jsonl", [
        {"id": r["id"], "samples": [{**c, "r0": s} for c, s in zip(comps, sc, strict=True)]}
        for r, comps, sc in zip(rows, graded, scores, strict=True)
    ])
    acc, n_pairs = onpolicy_accuracy(graded, scores)
    golds, r0 = _flat([[c["gold"] for c in comps] for comps in graded]), _flat(scores)
    return {
        **policy_stats(world, rows, graded),
        "gold_std": statistics.pstdev(golds),
        "r0_mean": _mean(r0),
        "r0_std": statistics.pstdev(r0),
        "r0_own_distribution_accuracy": own_acc,
        "r0_onpolicy_accuracy": acc,
        "r0_onpolicy_pairs": n_pairs,
        "r0_fixed_test_accuracy": fixed,
    }


def evaluate(world: World, policy: str, reward: str | None = None, reporter: Reporter = QUIET) -> dict[str, Any]:
    """Every world measurement of ``policy`` (and of ``reward``, default r_0) in one dict."""
    rows = world.split("eval")
    base = world.manifest["initial"]
    pi0 = [[{"text": s["text"], "gold": s["gold"]} for s in r["samples"]]
           for r in read_jsonl(world.dir / "pi0_eval.jsonl")]
    pi0_r0 = [[s["r0"] for s in r["samples"]] for r in read_jsonl(world.dir / "pi0_eval.jsonl")]
    graded = sample_graded(world, policy, rows, eval_sampling(world))
    stats = policy_stats(world, rows, graded)
    gold_rise = (stats["gold_mean"] - base["gold_mean"]) / (base["gold_std"] or 1.0)
    out: dict[str, Any] = {**stats, "gold_win_rate_vs_pi0": gold_win_rate(graded, pi0)}

    def rm_numbers(path: str, prefix: str, pi0_scores: list[list[float]] | None) -> None:
        scorer = TransformersRewardScorer(path, batch_size=256)
        try:
            scores = score_texts(scorer, rows, graded)
            ref = pi0_scores if pi0_scores is not None else score_texts(scorer, rows, pi0)
            out[f"{prefix}_onpolicy_accuracy"], out["onpolicy_pairs"] = onpolicy_accuracy(graded, scores)
            out[f"{prefix}_fixed_test_accuracy"] = fixed_test_accuracy(scorer, world)
            std = statistics.pstdev(_flat(ref)) or 1.0
            rm_rise = (_mean(_flat(scores)) - _mean(_flat(ref))) / std
            out[f"{prefix}_score_rise"] = rm_rise
            out[f"{prefix}_hacking_gap"] = rm_rise - gold_rise
        finally:
            scorer.close()

    rm_numbers(world.reward, "r0", pi0_r0)
    if reward is not None and reward != world.reward:
        rm_numbers(reward, "rm", None)
    else:
        for key in ("onpolicy_accuracy", "fixed_test_accuracy", "score_rise", "hacking_gap"):
            out[f"rm_{key}"] = out[f"r0_{key}"]
    out["gold_rise_std"] = gold_rise
    return out
