"""Checkpoint selection and the stop rule (the E-step's stabiliser).

Every candidate answers the selection prompts; the current RM r_{t-1} compares each answer with
pi_{t-1}'s answer to the same prompt. Win rate counts a tie as half a win. The best candidate is
kept; if even the best wins less than tau of the time, the run stops and pi_{t-1} is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def win_rate(candidate_rewards: Sequence[float], previous_rewards: Sequence[float]) -> float:
    if len(candidate_rewards) != len(previous_rewards) or not candidate_rewards:
        raise ValueError("win_rate needs two equally long, non-empty reward lists")
    wins = sum(1.0 if c > p else 0.5 if c == p else 0.0
               for c, p in zip(candidate_rewards, previous_rewards, strict=True))
    return wins / len(candidate_rewards)


@dataclass
class Decision:
    best: str
    win_rate: float
    stop: bool
    reason: str


def decide(win_rates: dict[str, float], tau: float, stop_rule: bool = True) -> Decision:
    """Pick the candidate with the highest win rate (earliest wins ties); stop when it is below tau."""
    if not win_rates:
        raise ValueError("no candidate checkpoints to select from")
    best = max(win_rates, key=lambda name: win_rates[name])  # dicts keep insertion (step) order
    rate = win_rates[best]
    if stop_rule and rate < tau:
        return Decision(best, rate, True, f"best win rate {rate:.3f} < tau {tau}: keep pi_(t-1) and stop")
    return Decision(best, rate, False, f"keep {best} (win rate {rate:.3f})")
