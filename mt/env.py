"""The environment a run is evaluated in, passed into the loop from outside.

An environment supplies the prompts, the initial models, optionally a gold reward, and
``evaluate(policy, reward) -> metrics``; it may also say what its numbers depend on beyond the config
(``identity()``, e.g. the build of a world), which a run records and a resume checks. The loop calls
nothing else of it, so the same runner trains on the CPU gold world (``mt.world.environment``), on the
paper's data evaluated by the benchmarks (``bench.environment``), or on a plain prompt source with no
evaluation (``PromptEnvironment``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .config import MTConfig
from .data import load_prompts
from .engine import Models
from .records import InputError
from .rundir import StageContext

Gold = Callable[[dict, str], float]  # (prompt row, response) -> gold reward in [0, 1]


class Environment(Protocol):
    name: str
    gold: Gold | None  # None where no gold reward exists (real data)
    evaluation: str  # "every_iteration" (cheap measurements), "final" (benchmarks) or "none"

    def prompts(self) -> tuple[list[dict], dict[str, list[dict]] | None]:
        """All training prompts, and splits the environment fixes itself (e.g. {"selection": rows}) or None."""

    def initial_models(self) -> Models: ...

    def evaluate(self, ctx: StageContext, policy: str, reward: str, iteration: int) -> dict[str, Any]: ...

    def heldout_prompts(self) -> list[dict]:
        """Prompts no split of the run uses (a judge's training data); empty when there are none."""

    def preference_pairs(self) -> str | None:
        """A JSONL file of the human/annotated pairs r_0 was trained on, when the environment has them."""


def require_gold(env: Environment, purpose: str) -> Gold:
    """``env.gold``, or an InputError for a part that needs it (``purpose``: "label with", "judge with")."""
    if env.gold is None:
        raise InputError(f"environment {env.name!r} has no gold reward to {purpose}")
    return env.gold


def environment_identity(env: Environment) -> dict[str, Any]:
    """``env.identity()``, or {} for an environment whose numbers depend on its config alone."""
    identity = getattr(env, "identity", None)
    return identity() if identity is not None else {}


@dataclass
class PromptEnvironment:
    """Prompts from ``data.prompts`` (a file or hub id), models from ``models.*``; no gold, no evaluation."""

    cfg: MTConfig
    name: str = "prompts"
    gold: Gold | None = None
    evaluation: str = "none"

    def prompts(self) -> tuple[list[dict], None]:
        d = self.cfg.data
        return load_prompts(d.prompts, d.prompt_column, d.id_column, d.hub_split), None

    def initial_models(self) -> Models:
        return Models(self.cfg.models.policy, self.cfg.models.reward)

    def evaluate(self, ctx: StageContext, policy: str, reward: str, iteration: int) -> dict[str, Any]:
        return {}

    def heldout_prompts(self) -> list[dict]:
        return []

    def preference_pairs(self) -> str | None:
        return None
