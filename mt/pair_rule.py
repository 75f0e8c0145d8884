"""E-step preference pairs from K scored samples of one prompt.

``mt`` (Mutual-Taught, reconstructed): rejected = the lowest-scoring response; chosen = the
shortest response scoring strictly above the prompt's mean reward, a guard against the RM's
length bias. ``max_min`` (RLHFlow iterative DPO): highest vs lowest. A prompt whose rewards all
tie carries no preference and is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class PairStats:
    built: int = 0
    skipped_tie: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {"pairs_built": self.built, "pairs_skipped_tie": self.skipped_tie}


def choose_pair(rewards: Sequence[float], lengths: Sequence[int], rule: str = "mt") -> tuple[int, int] | None:
    """Indices (chosen, rejected), or None when every reward ties."""
    if len(rewards) != len(lengths):
        raise ValueError("rewards and lengths differ in length")
    if len(rewards) < 2 or max(rewards) == min(rewards):
        return None
    rejected = min(range(len(rewards)), key=lambda i: (rewards[i], -lengths[i]))
    if rule == "max_min":
        chosen = max(range(len(rewards)), key=lambda i: (rewards[i], -lengths[i]))
    elif rule == "mt":
        mean = sum(rewards) / len(rewards)
        above = [i for i in range(len(rewards)) if rewards[i] > mean]
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
