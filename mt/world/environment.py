"""The gold world as an environment: its prompts, its pi_0 and r_0, its gold reward and its measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import MTConfig
from ..engine import Models
from ..progress import QUIET, Reporter
from ..rundir import StageContext
from ..seam import seam_diagnostic
from .build import World, ensure_world
from .measure import evaluate
from .tasks import gold_reward

WORLD = "world"  # models.policy / models.reward value that means "the world's own pi_0 / r_0"


@dataclass
class WorldEnvironment:
    cfg: MTConfig
    reporter: Reporter = QUIET
    name: str = "world"
    evaluation: str = "every_iteration"
    world: World = field(init=False)

    def __post_init__(self):
        self.world = ensure_world(self.cfg.world, self.reporter)

    def identity(self) -> dict[str, Any]:
        """The world's build: its digest (settings and generating code) and the fingerprint of its numbers
        (which other packages can move)."""
        manifest = self.world.manifest
        return {"world_digest": manifest["digest"], "world_fingerprint": manifest["fingerprint"]["numbers"]}

    def gold(self, row: dict, response: str) -> float:
        return gold_reward(row["family"], row["answer"], response, self.world.config.marker_penalty)

    def prompts(self) -> tuple[list[dict], dict[str, list[dict]]]:
        return self.world.split("train"), {"selection": self.world.split("selection")}

    def initial_models(self) -> Models:
        m = self.cfg.models
        return Models(self.world.policy if m.policy == WORLD else m.policy,
                      self.world.reward if m.reward == WORLD else m.reward)

    def evaluate(self, ctx: StageContext, policy: str, reward: str, iteration: int) -> dict[str, Any]:
        metrics = evaluate(self.world, policy, reward)
        # SEAM between the current policy and RM: does their mismatch fall or rise over iterations?
        seam = seam_diagnostic(policy, reward, self.world.split("eval"), seed=self.cfg.world.seed)
        metrics.update({k: v for k, v in seam.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        metrics["seam_source"] = f"{seam['seam_source']} ({seam['seam_backend']}), mode {seam['seam_mode']}"
        return metrics

    def heldout_prompts(self) -> list[dict]:
        return self.world.split("rm_build")

    def preference_pairs(self) -> str:
        return str(self.world.dir / "rm_train_pairs.jsonl")
