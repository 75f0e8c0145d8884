"""A method is the loop plus its choice at each step. The defaults are Mutual-Taught's.

The loop (``mt.loop``) asks the method, in order: which policy an iteration starts from, which prompts
the E-step uses, where its preference pairs come from (by default: sample K, ``label``, ``make_pairs``),
how the policy is updated, who judges the checkpoints in the selection step, and how the reward model is
updated (None = never). A baseline is these parts with some swapped: iterative DPO is Mutual-Taught's
parts without a reward update and with another pair rule; SPPO swaps the pair builder and the policy
update; RLP restarts from pi_0 and retrains the RM its own way. Each part is a plain function (or a
small frozen dataclass when it carries options), so a method never overrides a class it does not own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MTConfig
from .data import part_for
from .engine import Engine, Models
from .env import Environment
from .estep import SampledPairs, dpo_update, rm_labels, rule_pairs
from .mstep import mstep
from .rundir import StageContext
from .select import Judge, rm_judge


@dataclass
class Run:
    """What a method's parts may use: the engine (stages, models at work), the environment, pi_0 and r_0."""

    engine: Engine
    env: Environment
    initial: Models

    @property
    def cfg(self) -> MTConfig:
        return self.engine.cfg


Labeller = Callable[[Run, int, Models, list[dict], StageContext], tuple[list[list[float]], dict[str, Any]]]
PairMaker = Callable[[Run, int, list[dict]], tuple[list[dict], dict[str, Any]]]
PairSource = Callable[[Run, "Method", int, Models, list[dict]], list[dict]]
ExtraPairs = Callable[[Run, "Method", int, Models], list[dict]]
PolicyUpdate = Callable[[Run, int, Models, list[dict], StageContext], tuple[list[Path], dict[str, Any]]]
RewardUpdate = Callable[[Run, int, Models, str, list[dict], list[dict]], str]
PromptPicker = Callable[[Run, int, Models, dict[str, list[dict]]], list[dict]]
StartPolicy = Callable[[Run, int, Models], str]
Prepare = Callable[[Run, Models], Models]


def previous_policy(run: Run, t: int, models: Models) -> str:
    """Iteration t starts from pi_{t-1}."""
    return models.policy


def part_prompts(run: Run, t: int, models: Models, splits: dict[str, list[dict]]) -> list[dict]:
    """The PM part of iteration t, by the rotation in ``data.pm_parts``."""
    return splits[part_for(t, run.cfg.data.pm_parts)]


@dataclass(frozen=True)
class Method:
    start_policy: StartPolicy = previous_policy
    policy_prompts: PromptPicker = part_prompts
    pair_source: PairSource = SampledPairs()
    label: Labeller = rm_labels
    make_pairs: PairMaker = rule_pairs
    extra_pairs: ExtraPairs | None = None
    policy_update: PolicyUpdate = dpo_update
    judge: Judge = rm_judge  # who compares checkpoints with pi_{t-1} in the selection step
    reward_update: RewardUpdate | None = mstep
    prepare: Prepare | None = None  # once, before iteration 1 (Meta-Rewarding teaches its judge here)


MUTUAL_TAUGHT = Method()
