"""Local checks that run before any network access or model loading.

A benchmark finds a missing folder, a file that is a directory, or a model with the wrong head from
the disk alone, in milliseconds, and says so in one line; only then does it try a hub or load
weights. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mt.records import InputError, read_json

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
HEADS = {"policy": ("ForCausalLM", "a causal LM"),
         "reward": ("ForSequenceClassification", "a reward model with a one-logit head")}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` whose owner is not a local folder (``runs/x`` with ``runs/`` present is a path)."""
    return bool(HUB_ID.match(name)) and not Path(name).parent.exists()


def check_model(model: str, kind: str, role: str | None = None) -> None:
    """A local model folder is complete and has the head ``kind`` ("policy" or "reward") needs; a name that
    is no folder must be a hub id (and, offline, one in the Hugging Face cache)."""
    role = role or {"policy": "policy", "reward": "reward"}[kind]
    path = Path(model).expanduser()
    if not path.exists():
        if not looks_like_hub_id(model):
            raise InputError(f"{role} model {model!r}: no such folder (give an existing model folder or a hub id "
                             f"owner/name)")
        if offline() and not _cached(model):
            raise InputError(f"{role} model {model!r}: no such folder, and the hub is offline (HF_HUB_OFFLINE) "
                             f"with no cached copy; give a local model folder")
        return
    if not path.is_dir():
        raise InputError(f"{role} model {model}: a file, not a model folder (a folder with config.json)")
    if not (path / "config.json").exists():
        raise InputError(f"{role} model folder {model} has no config.json: not a saved transformers model")
    config = read_json(path / "config.json")
    if not isinstance(config, dict):
        raise InputError(f"{path / 'config.json'}: expected a JSON object")
    suffix, wanted = HEADS[kind]
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith(suffix) for a in architectures):
        raise InputError(f"{role} model {model} is a {architectures[0]}, not {wanted} (…{suffix})")
    labels = config.get("id2label")
    if kind == "reward" and isinstance(labels, dict) and len(labels) != 1:
        raise InputError(f"{role} model {model} has {len(labels)} output logits; expected one")
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise InputError(f"{role} model folder {model} has no tokenizer ({' or '.join(TOKENIZER_FILES[:2])}); "
                         f"save the tokenizer beside the weights")


def _cached(model: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # an old huggingface_hub, an unreadable cache: do not claim it is there
        return False


def check_file(path: str | Path, what: str) -> Path:
    """An existing regular file, or one error naming it and what it should have been."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} {path}: file not found")
    if p.is_dir():
        raise InputError(f"{what} {path}: a folder, expected a file")
    return p
