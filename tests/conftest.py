"""Shared fixtures: tiny models built in-process, and the gold worlds of a test session.

Nothing here reaches a hub. ``world`` is the tiny preset's own world (minutes to build), used only
by the tests of the world's calibration; ``small_world`` is a reduced world (seconds), used by every
test that only needs a trained pi_0 and r_0 to exist. Each is built once per session.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pytest_configure(config):
    warnings.filterwarnings("ignore", category=FutureWarning)
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    """An untrained tiny policy and reward model saved to folders (the real loading path)."""
    from mt.tiny import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def world_cache(tmp_path_factory) -> Path:
    """A cache folder shared by the session, so the world is built once."""
    root = os.environ.get("MT_REPRO_TEST_CACHE")
    path = Path(root) if root else tmp_path_factory.mktemp("cache")
    return path


@pytest.fixture(scope="session")
def world(world_cache):
    """The tiny preset's gold world."""
    from mt.config import load_config
    from mt.world import ensure_world

    cfg = load_config("tiny", overrides=[f"world.dir={world_cache / 'world'}"])
    return ensure_world(cfg.world)


# A world with the tiny preset's shape but a fraction of its data and training: pi_0 and r_0 exist and are
# better than random, which is all that end-to-end tests of the machinery need.
SMALL_WORLD = ["world.train_prompts=240", "world.selection_prompts=20", "world.eval_prompts=30",
               "world.rm_build_prompts=200", "world.rm_test_prompts=30", "world.sft_examples=4000",
               "world.sft_steps=250", "world.rm_samples=4", "world.rm_epochs=2"]


@pytest.fixture(scope="session")
def small_world_overrides(world_cache) -> list[str]:
    """``--set`` values that point the tiny preset at the small world."""
    return [f"world.dir={world_cache / 'small-world'}", *SMALL_WORLD]


@pytest.fixture(scope="session")
def small_world_args(small_world_overrides) -> list[str]:
    """The same as command-line options: --set KEY=VALUE for each."""
    return [arg for o in small_world_overrides for arg in ("--set", o)]


@pytest.fixture(scope="session")
def small_world(small_world_overrides):
    from mt.config import load_config
    from mt.world import ensure_world

    return ensure_world(load_config("tiny", overrides=small_world_overrides).world)
