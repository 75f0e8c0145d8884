"""E-step preference pairs from K scored samples of one prompt.

``mt`` (Mutual-Taught, reconstructed): rejected = the lowest-scoring response; chosen = the
shortest response scoring strictly above the prompt's mean reward, a guard against the RM's
length bias. ``max_min`` (RLHFlow iterative DPO): highest vs lowest. A prompt whose rewards all
tie carries no preference and is skipped and counted. Ties: rejected is the longest of the lowest;
chosen is, under mt, the best of the shortest and, under max_min, the shortest of the highest; then
the first index.

The mean is exact (a float is a fraction): a rounded mean can land on the top reward when the
others sit one ulp below it, leaving nothing strictly above, and it would depend on the order the
rewards are summed in. Exactly, the highest reward is above the mean whenever rewards differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass
class PairStats:
    built: int = 0
    skipped_tie: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"pairs_built": self.built, "pairs_skipped_tie": self.skipped_tie}


def choose_pair(rewards: Sequence[float], lengths: Sequence[int], rule: str = "mt") -> tuple[int, int] | None:
    """Indices (chosen, rejected), or None when every reward ties."""
    if len(rewards) != len(lengths):
        raise ValueError("rewards and lengths differ in length")
    if not all(math.isfinite(r) for r in rewards):
        raise ValueError(f"rewards must be finite numbers, got {list(rewards)}")
    if len(rewards) < 2 or max(rewards) == min(rewards):
        return None
    rejected = min(range(len(rewards)), key=lambda i: (rewards[i], -lengths[i]))
    if rule == "max_min":
        chosen = max(range(len(rewards)), key=lambda i: (rewards[i], -lengths[i]))
    elif rule == "mt":
        exact = [Fraction(float(r)) for r in rewards]
        total = sum(exact)  # r > total / n, compared as n * r > total: no rounding anywhere
        above = [i for i, r in enumerate(exact) if len(exact) * r > total]
        chosen = min(above, key=lambda i: (lengths[i], -rewards[i]))
    else:
        raise ValueError(f"unknown pair rule {rule!r}; expected 'mt' or 'max_min'")
    return chosen, rejected


def build_pairs(samples: Sequence[dict], rule: str = "mt") -> tuple[list[dict], PairStats]:
    """``samples`` rows: {"id", "prompt", "responses": [{"text", "num_tokens", "reward"}...]}."""
    pairs, stats = [], PairStats()
    for row in samples:
        responses = row["responses"]
        picked = choose_pair([r["reward"] for r in responses], [r["num_tokens"] for r in responses], rule)
        if picked is None:
            stats.skipped_tie += 1
            continue
        c, r = responses[picked[0]], responses[picked[1]]
        pairs.append({
            "id": row["id"], "prompt": row["prompt"],
            "chosen": c["text"], "rejected": r["text"],
            "chosen_reward": c["reward"], "rejected_reward": r["reward"],
        })
        stats.built += 1
    return pairs, stats
