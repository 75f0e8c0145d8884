"""What the gold world can measure and no real benchmark shows directly.

- gold reward of a policy on the evaluation split (mean, per family);
- gold win rate against pi_0 (the AlpacaEval analogue: same prompts, tie = half);
- RM accuracy against gold on pairs of a given policy's own samples (on-policy accuracy, the
  quantity the paper says decays as the policy moves), overall and per family;
- RM accuracy on the fixed gold-labelled test set (the RewardBench analogue);
- the hacking gap: the RM's standardised score rise from pi_0 minus gold's standardised rise;
- KL(pi_t || pi_0), a Monte-Carlo estimate on the policy's own evaluation samples;
- r_t's on-policy accuracy minus r_0's, on the same samples of pi_t.

The functions taking samples and scores are pure; those taking a ``World`` sample or score models.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..generate import Sampling, TransformersGenerator
from ..records import read_jsonl, write_jsonl
from ..reward import TransformersRewardScorer
from .build import SAMPLE_TEMPERATURE, SAMPLE_TOP_P, World
from .tasks import MARKER, gold_reward, strip_marker, units

EVAL_TEMPERATURE, EVAL_TOP_P = SAMPLE_TEMPERATURE, SAMPLE_TOP_P


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


def onpolicy_accuracy_by_family(rows: Sequence[dict], graded: list[list[dict]], scores: list[list[float]],
                                families: Sequence[str]) -> dict[str, float]:
    out = {}
    for fam in families:
        idx = [i for i, r in enumerate(rows) if r["family"] == fam]
        out[fam] = onpolicy_accuracy([graded[i] for i in idx], [scores[i] for i in idx])[0]
    return out


def win_rates_by_prompt(graded: list[list[dict]], baseline: list[list[dict]]) -> list[float]:
    """Per prompt, the share of sample pairs (i-th vs i-th) that gold prefers over the baseline's, ties half."""
    return [statistics.fmean(1.0 if x["gold"] > y["gold"] else 0.5 if x["gold"] == y["gold"] else 0.0
                             for x, y in zip(a, b, strict=True))
            for a, b in zip(graded, baseline, strict=True)]


def fixed_test_accuracy(scorer: TransformersRewardScorer, world: World) -> float:
    rows = world.split("rm_test")
    prompts = [r["prompt"] for r in rows]
    chosen = scorer.score(prompts, [r["chosen"] for r in rows])
    rejected = scorer.score(prompts, [r["rejected"] for r in rows])
    return pair_accuracy(chosen, rejected)


def pairs_accuracy(scorer: TransformersRewardScorer, pairs: Sequence[dict]) -> tuple[float, dict[str, float]]:
    """Accuracy on gold-labelled pairs (chosen = gold-preferred), overall and by family when rows name one."""
    prompts = [p["prompt"] for p in pairs]
    chosen = scorer.score(prompts, [p["chosen"] for p in pairs])
    rejected = scorer.score(prompts, [p["rejected"] for p in pairs])
    by_family: dict[str, list[bool]] = {}
    for p, c, r in zip(pairs, chosen, rejected, strict=True):
        by_family.setdefault(p.get("family", "all"), []).append(c > r)
    return pair_accuracy(chosen, rejected), {f: sum(v) / len(v) for f, v in sorted(by_family.items())}


# ---------------------------------------------------------------- KL(pi_t || pi_0)
def response_logprobs(policy: str, prompts: Sequence, responses: Sequence[str]) -> list[float]:
    """log pi(y | x) summed over the response's tokens and its EOS, at temperature 1 (SEAM's scorer)."""
    from ..seam.judge import PolicyLogProbs

    scorer = PolicyLogProbs(policy, dtype="float32", batch_size=256)
    try:
        return [o["pm_sum"] for o in scorer.score(prompts, responses)]
    finally:
        scorer.close()


def kl_estimate(logp_policy: Sequence[float], logp_reference: Sequence[float]) -> float:
    """Monte-Carlo KL(pi_t || pi_0): mean over pi_t's samples of log pi_t(y|x) - log pi_0(y|x)."""
    return statistics.fmean(a - b for a, b in zip(logp_policy, logp_reference, strict=True))


def kl_to_pi0(world: World, policy: str, rows: Sequence[dict], graded: list[list[dict]]) -> float:
    """KL(policy || pi_0) on ``graded`` (the policy's own samples; drawn at the evaluation settings, so this
    is the KL of the policy's T=1 distributions measured where its tempered sampler goes)."""
    prompts = [r["prompt"] for r, comps in zip(rows, graded, strict=True) for _ in comps]
    texts = [c["text"] for comps in graded for c in comps]
    if policy == world.policy:
        return 0.0
    return kl_estimate(response_logprobs(policy, prompts, texts), response_logprobs(world.policy, prompts, texts))


def rm_accuracy_gain(graded: list[list[dict]], rm_scores: list[list[float]], r0_scores: list[list[float]]) -> float:
    """r_t's on-policy accuracy minus r_0's, both on the same samples of pi_t."""
    return onpolicy_accuracy(graded, rm_scores)[0] - onpolicy_accuracy(graded, r0_scores)[0]


# ---------------------------------------------------------------- policies
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
    out["exact_rate"] = _mean([g >= 1.0 for g in golds])
    out["marker_rate"] = _mean([t.startswith(MARKER) for t in texts])
    out["response_chars"] = _mean([len(t) for t in texts])
    out["distinct_per_prompt"] = _mean([len({c["text"] for c in comps}) for comps in graded])
    return out


def long_rate(rows: Sequence[dict], graded: list[list[dict]]) -> float:
    """Share of answers with more positions than the right one: the padding a length-biased RM pays for.

    Measured for trained policies only, so that a world's manifest (and its fingerprint) stays as built."""
    def positions(family: str, text: str) -> int:
        return len(units(family, strip_marker(text.strip("\n"))[0].strip()))

    return _mean([positions(r["family"], c["text"]) > positions(r["family"], r["answer"])
                  for r, comps in zip(rows, graded, strict=True) for c in comps])


def baseline_stats(world: World) -> dict[str, Any]:
    """pi_0's evaluation samples (cached for win rates) and r_0's numbers, stored in the manifest."""
    rows = world.split("eval")
    graded = sample_graded(world, world.policy, rows, eval_sampling(world))
    scorer = TransformersRewardScorer(world.reward, batch_size=256)
    try:
        scores = score_texts(scorer, rows, graded)
        own_acc, own_by_family = pairs_accuracy(scorer, read_jsonl(world.dir / "rm_own_test_pairs.jsonl"))
        fixed = fixed_test_accuracy(scorer, world)
    finally:
        scorer.close()
    write_jsonl(world.dir / "pi0_eval.jsonl", [
        {"id": r["id"], "samples": [{**c, "r0": s} for c, s in zip(comps, sc, strict=True)]}
        for r, comps, sc in zip(rows, graded, scores, strict=True)
    ])
    acc, n_pairs = onpolicy_accuracy(graded, scores)
    by_family = onpolicy_accuracy_by_family(rows, graded, scores, world.config.families)
    golds, r0 = _flat([[c["gold"] for c in comps] for comps in graded]), _flat(scores)
    return {
        **policy_stats(world, rows, graded),
        "gold_std": statistics.pstdev(golds),
        "r0_mean": _mean(r0),
        "r0_std": statistics.pstdev(r0),
        "r0_own_test_accuracy": own_acc,
        **{f"r0_own_test_accuracy_{f}": v for f, v in own_by_family.items()},
        "r0_onpolicy_accuracy": acc,
        **{f"r0_onpolicy_accuracy_{f}": v for f, v in by_family.items()},
        "r0_onpolicy_pairs": n_pairs,
        "r0_own_minus_onpolicy": own_acc - acc,
        "r0_fixed_test_accuracy": fixed,
    }


def pi0_eval_samples(world: World) -> tuple[list[list[dict]], list[list[float]]]:
    rows = read_jsonl(world.dir / "pi0_eval.jsonl")
    return ([[{"text": s["text"], "gold": s["gold"]} for s in r["samples"]] for r in rows],
            [[s["r0"] for s in r["samples"]] for r in rows])


def evaluate(world: World, policy: str, reward: str | None = None) -> dict[str, Any]:
    """Every world measurement of ``policy`` (and of ``reward``, default r_0) in one dict."""
    rows = world.split("eval")
    base = world.manifest["initial"]
    pi0, pi0_r0 = pi0_eval_samples(world)
    graded = sample_graded(world, policy, rows, eval_sampling(world))
    stats = {**policy_stats(world, rows, graded), "long_rate": long_rate(rows, graded)}
    gold_rise = (stats["gold_mean"] - base["gold_mean"]) / (base["gold_std"] or 1.0)
    wins = win_rates_by_prompt(graded, pi0)
    out: dict[str, Any] = {"regime": world.regime, "world_fingerprint": world.manifest["fingerprint"]["numbers"],
                           **stats, "gold_win_rate_vs_pi0": statistics.fmean(wins)}
    # Per evaluation prompt, for the tables' bootstrap over prompts within a seed and the paired comparisons.
    out["per_prompt"] = {"gold_win_rate_vs_pi0": wins,
                         "gold_mean": [statistics.fmean(c["gold"] for c in comps) for comps in graded]}
    out["kl_vs_pi0"] = kl_to_pi0(world, policy, rows, graded)
    on_policy: dict[str, list[list[float]]] = {}

    def rm_numbers(path: str, prefix: str, pi0_scores: list[list[float]] | None) -> None:
        scorer = TransformersRewardScorer(path, batch_size=256)
        try:
            scores = score_texts(scorer, rows, graded)
            on_policy[prefix] = scores
            ref = pi0_scores if pi0_scores is not None else score_texts(scorer, rows, pi0)
            out[f"{prefix}_onpolicy_accuracy"], out["onpolicy_pairs"] = onpolicy_accuracy(graded, scores)
            for fam, v in onpolicy_accuracy_by_family(rows, graded, scores, world.config.families).items():
                out[f"{prefix}_onpolicy_accuracy_{fam}"] = v
            out[f"{prefix}_fixed_test_accuracy"] = fixed_test_accuracy(scorer, world)
            out[f"{prefix}_mean"] = _mean(_flat(scores))
            std = statistics.pstdev(_flat(ref)) or 1.0
            rm_rise = (_mean(_flat(scores)) - _mean(_flat(ref))) / std
            out[f"{prefix}_score_rise"] = rm_rise
            out[f"{prefix}_hacking_gap"] = rm_rise - gold_rise
        finally:
            scorer.close()

    rm_numbers(world.reward, "r0", pi0_r0)
    if reward is not None and reward != world.reward:
        rm_numbers(reward, "rm", None)
        out["rm_minus_r0_onpolicy_accuracy"] = rm_accuracy_gain(graded, on_policy["rm"], on_policy["r0"])
    else:
        for key in ("onpolicy_accuracy", "fixed_test_accuracy", "score_rise", "hacking_gap", "mean",
                    *(f"onpolicy_accuracy_{f}" for f in world.config.families)):
            out[f"rm_{key}"] = out[f"r0_{key}"]
        out["rm_minus_r0_onpolicy_accuracy"] = 0.0
    out["gold_rise_std"] = gold_rise
    return out
