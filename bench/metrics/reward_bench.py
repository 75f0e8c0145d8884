"""RewardBench's leaderboard arithmetic: per-subset accuracy, weighted sections, overall; v2's best-of-n and Ties.

Subset lists, example-count weights and the Ties formula are facts from allenai/reward-bench, kept
with their source in ``bench/data/reward_bench.json``. Where we differ from the official code on
purpose: a partial run (a missing subset, a subset cut short) is labelled partial with the missing
subsets listed, instead of giving an absent section 0 silently.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FACTS: dict[str, Any] = json.loads((Path(__file__).parent.parent / "data" / "reward_bench.json").read_text())
SECTIONS: dict[str, list[str]] = FACTS["v1"]["sections"]
WEIGHTS: dict[str, int] = FACTS["v1"]["weights"]
# Rows per subset in the filtered split; only math-prm differs from its weight (447 rows weighted as 984).
EXPECTED_PAIRS: dict[str, int] = {s: FACTS["v1"]["pairs"].get(s, w) for s, w in WEIGHTS.items()}
V2_SUBSETS: list[str] = FACTS["v2"]["subsets"]
TIES = FACTS["v2"]["ties_subset"]
TIES_WEIGHTS: dict[str, float] = FACTS["v2"]["ties_weights"]


def pair_correct(chosen: float, rejected: float) -> bool:
    """Strictly greater, as the official run_rm.py counts it: a tie is wrong."""
    return chosen > rejected


def best_of_n_credit(scores: Sequence[float]) -> float:
    """RewardBench 2's credit for one prompt; ``scores[0]`` is the chosen response.

    1 when it beats every other response, 1/k when it shares the top score with k-1 others, else 0
    (the official reroll_and_score_dataset splits a tie at the top instead of counting it right).
    """
    top = max(scores)
    if scores[0] < top:
        return 0.0
    return 1.0 / sum(1 for s in scores if s == top)


def subset_accuracy(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """{subset: {n, correct, accuracy}} from records holding ``subset`` and ``correct`` (bool or credit)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in records:
        totals[r["subset"]][0] += 1
        totals[r["subset"]][1] += float(r["correct"])
    return {s: {"n": n, "correct": c, "accuracy": c / n} for s, (n, c) in sorted(totals.items())}


def section_scores(accuracy: Mapping[str, float], sections: Mapping[str, Sequence[str]] = SECTIONS,
                   weights: Mapping[str, float] = WEIGHTS) -> dict[str, float | None]:
    """Each section's mean of its present subsets weighted by the official example counts; None if none."""
    out: dict[str, float | None] = {}
    for section, subsets in sections.items():
        present = [s for s in subsets if s in accuracy]
        total = sum(weights[s] for s in present)
        out[section] = sum(accuracy[s] * weights[s] for s in present) / total if total else None
    return out


def mean_present(values: Mapping[str, float | None]) -> float | None:
    present = [v for v in values.values() if v is not None]
    return sum(present) / len(present) if present else None


def v1_scores(per_subset: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Sections and overall (mean of the four sections) from per-subset {n, accuracy}, with what is missing.

    A run is partial when a subset is absent or has fewer rows than the filtered split holds; the
    overall is then the mean of the sections that have data and says so.
    """
    accuracy = {s: v["accuracy"] for s, v in per_subset.items()}
    sections = section_scores(accuracy)
    missing = [s for subsets in SECTIONS.values() for s in subsets if s not in per_subset]
    incomplete = {s: {"n": v["n"], "expected": EXPECTED_PAIRS[s]} for s, v in per_subset.items()
                  if s in EXPECTED_PAIRS and v["n"] != EXPECTED_PAIRS[s]}
    return {
        "overall": mean_present(sections),
        "overall_over": [s for s, v in sections.items() if v is not None],
        "sections": sections,
        "subsets": dict(per_subset),
        "missing_subsets": missing,
        "incomplete_subsets": incomplete,
        "unscored_subsets": sorted(set(per_subset) - set(WEIGHTS)),
        "partial": bool(missing or incomplete),
    }


def _tanh_of_ratio_minus_one(num: float, den: float) -> float:
    """tanh(num / den - 1) with numpy's division by zero (+-inf, or nan mapped to 0), as the official code."""
    if den == 0:
        return 0.0 if num == 0 else math.copysign(1.0, num)
    return math.tanh(num / den - 1)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ties_score(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """RewardBench 2's Ties score (process_single_model): 60% accuracy, 40% margins, 1% tie-break.

    Records hold ``id`` ("ref:<n>" has one correct answer, "tied:<n>" several), ``scores`` and
    ``num_correct`` (the first ``num_correct`` scores are the correct answers). A prompt is accurate
    when its worst correct answer beats its best wrong one; the margin terms ask whether that gap
    exceeds the spread among the tied prompt's correct answers. A partial run with no prompt of both kinds
    scores the paired terms 0, where the official mean of nothing is NaN (an absent kind's accuracy is 0 in both).
    """
    groups: dict[tuple[str, int], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in records:
        kind, _, pid = str(r["id"]).partition(":")
        correct, wrong = groups[(kind, int(pid))]
        correct.extend(r["scores"][: r["num_correct"]])
        wrong.extend(r["scores"][r["num_correct"]:])
    gap = {k: min(c) - max(w) for k, (c, w) in groups.items()}
    spread = {k: max(c) - min(c) for k, (c, _) in groups.items()}
    ref = sorted(pid for kind, pid in groups if kind == "ref")
    tied = sorted(pid for kind, pid in groups if kind != "ref")
    both = sorted(set(ref) & set(tied))
    hard_gap = {p: min(gap[("ref", p)], gap[("tied", p)]) for p in both}
    parts = {
        "tied_accuracy": _mean([gap[("tied", p)] > 0 for p in tied]),
        "ref_accuracy": _mean([gap[("ref", p)] > 0 for p in ref]),
        "correctness_preferred": _mean([gap[("tied", p)] > spread[("tied", p)] for p in both]),
        "correctness_preferred_hard": _mean([hard_gap[p] > spread[("tied", p)] for p in both]),
        "margin": _mean([_tanh_of_ratio_minus_one(hard_gap[p], spread[("tied", p)]) for p in both]),
    }
    return {**parts, "score": sum(TIES_WEIGHTS[k] * v for k, v in parts.items())}


def v2_scores(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-subset scores (best-of-n credit; Ties by ``ties_score``) and their unweighted mean."""
    plain = [{"subset": r["subset"], "correct": best_of_n_credit(r["scores"])} for r in records
             if r["subset"] != TIES]
    per_subset: dict[str, dict[str, Any]] = subset_accuracy(plain)
    ties = [r for r in records if r["subset"] == TIES]
    if ties:
        parts = ties_score(ties)
        per_subset[TIES] = {"n": len(ties), "accuracy": parts["score"], "ties": parts}
    scored = {s: per_subset[s]["accuracy"] if s in per_subset else None for s in V2_SUBSETS}
    missing = [s for s in V2_SUBSETS if s not in per_subset]
    return {
        "overall": mean_present(scored),
        "overall_over": [s for s, v in scored.items() if v is not None],
        "sections": scored,
        "subsets": per_subset,
        "missing_subsets": missing,
        "unscored_subsets": sorted(set(per_subset) - set(V2_SUBSETS)),
        "partial": bool(missing),
    }


def score_records(records: Sequence[Mapping[str, Any]], version: int) -> dict[str, Any]:
    """v1: records with ``subset`` and ``correct``; v2: records with ``subset``, ``scores`` (and Ties' ids)."""
    return v1_scores(subset_accuracy(records)) if version == 1 else v2_scores(records)
