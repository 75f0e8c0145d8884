"""Checkpoint selection and the stop rule (the E-step's stabiliser).

Every candidate answers the selection prompts; the current RM r_{t-1} compares each answer with
pi_{t-1}'s answer to the same prompt (a method may swap the judge: the gold-label ceiling judges by
gold). Win rate counts a tie as half a win. The best candidate is kept; if even the best wins less
than tau of the time, the run stops and pi_{t-1} is final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Models
from .env import require_gold
from .records import write_jsonl
from .rundir import StageContext

if TYPE_CHECKING:
    from .method import Run


Judge = Callable[["Run", Models, list[dict], list[str], str], tuple[list[float], dict[str, Any]]]


def rm_judge(run: Run, models: Models, rows: list[dict], texts: list[str], what: str) -> tuple[list[float], dict]:
    """The current RM r_{t-1}'s score of each answer: Mutual-Taught's judge."""
    return run.engine.score(models.reward, [r["prompt"] for r in rows], texts, what), {}


def gold_judge(run: Run, models: Models, rows: list[dict], texts: list[str], what: str) -> tuple[list[float], dict]:
    """The environment's gold reward of each answer: a perfect judge (a control; the gold world only)."""
    gold = require_gold(run.env, "judge with")
    return [gold(r, text) for r, text in zip(rows, texts, strict=True)], {"judge": "gold"}


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


def select(run: Run, t: int, models: Models, candidates: list[str], selection: list[dict],
           judge: Judge = rm_judge) -> dict[str, Any]:
    """The ``select`` stage: {"policy": the kept candidate, "win_rate", "stop"}."""
    cfg, engine = run.cfg, run.engine

    def stage(ctx: StageContext):
        # One sampling seed for every model: candidates are compared on common random numbers.
        sampling = engine.sampling(1, ctx.seed, cfg.select.temperature)
        names = candidates if cfg.select.enabled else candidates[-1:]
        answers = {}
        for name in ["previous", *names]:
            path = models.policy if name == "previous" else engine.abs(name)
            outs, _ = engine.generate(path, selection, sampling, f"iter {t} selection: {Path(name).name}")
            answers[name] = [o[0]["text"] for o in outs]
        judged = {name: judge(run, models, selection, texts, f"iter {t} selection: judging")
                  for name, texts in answers.items()}
        rewards = {name: scores for name, (scores, _) in judged.items()}
        rates = {name: win_rate(rewards[name], rewards["previous"]) for name in names}
        decision = decide(rates, cfg.select.tau, cfg.select.stop_rule)
        write_jsonl(ctx.dir / "answers.jsonl", [
            {"id": r["id"], **{f"{Path(n).name}": {"text": answers[n][i], "reward": rewards[n][i]} for n in answers}}
            for i, r in enumerate(selection)
        ])
        result = {"policy": decision.best, "win_rate": decision.win_rate, "stop": decision.stop}
        metrics = {"win_rates": {Path(n).name: v for n, v in rates.items()},
                   "selected": Path(decision.best).name, "selected_win_rate": decision.win_rate,
                   "stop": decision.stop, "decision": decision.reason, "tau": cfg.select.tau,
                   "selection_enabled": cfg.select.enabled, **judged["previous"][1]}
        return result, metrics

    return engine.stage(t, "select", stage)
