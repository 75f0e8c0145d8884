"""Shared fixtures: tiny models built in-process, and one gold world per test session.

Nothing here reaches a hub. The world is built once into a session cache folder (about two
minutes on two cores) and reused by every test that needs trained models.
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
