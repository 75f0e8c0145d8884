"""Plugging the gold world into the Mutual-Taught loop: its prompts, its initial models, its measurements."""

from __future__ import annotations

from ..config import MTConfig
from ..loop import LoopHooks, Models
from ..progress import QUIET, Reporter
from ..seam import seam_diagnostic
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
        metrics = evaluate(world, policy, reward)
        # SEAM between the current policy and RM: does their mismatch fall or rise over iterations?
        seam = seam_diagnostic(policy, reward, world.split("eval"), seed=cfg.world.seed)
        metrics.update({k: v for k, v in seam.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        metrics["seam_source"] = f"{seam['seam_source']} ({seam['seam_backend']}), mode {seam['seam_mode']}"
        return metrics

    return LoopHooks(evaluate=evaluate_, prompts=prompts, initial_models=initial_models)
