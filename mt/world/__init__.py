"""The CPU gold-reward world: tasks with a computable gold reward, pi_0, r_0 and measurements."""

from .build import World, build_world, ensure_world, world_dir
from .measure import evaluate

__all__ = ["World", "build_world", "ensure_world", "evaluate", "world_dir"]
