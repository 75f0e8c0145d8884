"""SEAM's two reported uses, each against the control the paper compares with.

1. Data selection: drop the highest-SEAM fraction of RL prompts (+4.5% in the paper, fraction not
   stated) versus dropping the same number at random.
2. RM augmentation (reconstructed): on the top-SEAM prompts, add a pair y* > y_k for every worse
   answer the RM misjudged (+4% over plain augmentation), versus the same number of y* > y_k pairs
   drawn at random from all prompts.

Pairs come in the format ``mt.mstep.train_reward_model`` takes: {"prompt": messages, "chosen", "rejected"}.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from .metric import hacks

SELECTION_MODES = ("seam", "random")


def seam_by_id(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    return {r["id"]: r["seam"] for r in records}


def drop_count(total: int, fraction: float) -> int:
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return round(fraction * total)


def select_prompts(seam_scores: Mapping[str, float], fraction: float, mode: str = "seam",
                   seed: int = 0) -> tuple[list[str], list[str]]:
    """(kept ids, dropped ids), each in input order; both modes drop ``round(fraction * n)`` prompts.

    ``seam`` drops the highest scores (on a tie the earlier prompt goes first); ``random`` drops a
    uniform sample, seeded.
    """
    if mode not in SELECTION_MODES:
        raise ValueError(f"unknown selection mode {mode!r}; expected one of {', '.join(SELECTION_MODES)}")
    ids = list(seam_scores)
    n = drop_count(len(ids), fraction)
    if mode == "seam":
        ranked = sorted(range(len(ids)), key=lambda i: (-seam_scores[ids[i]], i))
        dropped = set(ranked[:n])
    else:
        dropped = set(random.Random(seed).sample(range(len(ids)), n))
    return [x for i, x in enumerate(ids) if i not in dropped], [x for i, x in enumerate(ids) if i in dropped]


def _pair(record: Mapping[str, Any], worse: Mapping[str, Any], origin: str) -> dict[str, Any]:
    return {"id": record["id"], "prompt": record["prompt"], "chosen": record["gold"]["text"],
            "rejected": worse["text"], "origin": origin}


def seam_augmentation(records: Sequence[Mapping[str, Any]], fraction: float) -> list[dict[str, Any]]:
    """y* > y_k for each y_k the RM ranked above y*, on the ``fraction`` of prompts with the highest SEAM."""
    _, top = select_prompts(seam_by_id(records), fraction, "seam")
    chosen = set(top)
    return [_pair(r, w, "seam") for r in records if r["id"] in chosen
            for w, hacked in zip(r["worse"], hacks(r["gold"], r["worse"]), strict=True) if hacked]


def random_augmentation(records: Sequence[Mapping[str, Any]], size: int, seed: int = 0) -> list[dict[str, Any]]:
    """``size`` pairs y* > y_k drawn uniformly from every prompt's worse answers, misjudged or not."""
    candidates = [(r, w) for r in records for w in r["worse"]]
    picked = sorted(random.Random(seed).sample(range(len(candidates)), min(size, len(candidates))))
    return [_pair(*candidates[i], "random") for i in picked]


def augmentation_pairs(records: Sequence[Mapping[str, Any]], fraction: float, mode: str = "seam",
                       seed: int = 0) -> list[dict[str, Any]]:
    """SEAM-guided pairs, or as many random ones (the paper's comparison holds the size fixed)."""
    if mode not in SELECTION_MODES:
        raise ValueError(f"unknown augmentation mode {mode!r}; expected one of {', '.join(SELECTION_MODES)}")
    guided = seam_augmentation(records, fraction)
    return guided if mode == "seam" else random_augmentation(records, len(guided), seed)
