"""Plugging the gold world into the Mutual-Taught loop: its prompts, its initial models, its measurements."""

from __future__ import annotations

from ..config import MTConfig
from ..loop import LoopHooks, Models
from ..progress import QUIET, Reporter
from .build import ensure_world
from .measure import evaluate

WORLD = "world"


def world_hooks(cfg: MTConfig, reporter: Reporter = QUIET) -> LoopHooks:
    world = ensure_world(cfg.world, reporter)

    def prompts(_cfg: MTConfig):
        return world.split("train"), {"selection": world.split("selection")}

    def initial_models(c: MTConfig) -> Models:
        return Models(world.policy if c.models.policy == WORLD else c.models.policy,
                      world.reward if c.models.reward == WORLD else c.models.reward)

    def evaluate_(ctx, policy: str, reward: str, iteration: int):
        return evaluate(world, policy, reward)

    return LoopHooks(evaluate=evaluate_, prompts=prompts, initial_models=initial_models)
