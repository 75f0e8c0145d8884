"""The M-step's variance-adaptive filter on pseudo-pairs (y_t preferred over y_{t-1}).

delta(x) = r_{t-1}(x, y_t) - r_{t-1}(x, y_{t-1}). A pair is dropped when delta <= -eps_t; mildly
negative pairs (-eps_t < delta < 0) are kept on purpose (the paper's ablation finds the noise
helps), and no pair is ever flipped. eps_t is the population standard deviation of either the old
RM's rewards of y_{t-1} over the split (``reward_std``) or of the margins (``margin_std``); which one
the paper means is not stated, so both exist and each result records its choice.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def epsilon(prev_rewards: Sequence[float], margins: Sequence[float], definition: str = "reward_std") -> float:
    values = {"reward_std": prev_rewards, "margin_std": margins}.get(definition)
    if values is None:
        raise ValueError(f"unknown eps definition {definition!r}; expected 'reward_std' or 'margin_std'")
    if len(values) < 2:
        return 0.0
    return statistics.pstdev(values)


def keep_mask(margins: Sequence[float], eps: float) -> list[bool]:
    """True where the pseudo-pair survives: delta > -eps (the boundary itself is dropped)."""
    return [d > -eps for d in margins]


def filter_stats(margins: Sequence[float], mask: Sequence[bool], eps: float) -> dict[str, float | int]:
    kept = sum(mask)
    return {
        "eps_t": eps,
        "filter_kept": kept,
        "filter_dropped": len(mask) - kept,
        "filter_drop_share": (len(mask) - kept) / len(mask) if mask else 0.0,
        "filter_mild_negatives_kept": sum(1 for d, k in zip(margins, mask, strict=True) if k and d < 0),
        "margin_mean": statistics.fmean(margins) if margins else 0.0,
    }
