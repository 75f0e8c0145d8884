"""Local checks that run before any network access or model loading.

A command finds a missing folder, a file where a folder belongs, a model with the wrong head or
without a tokenizer from the disk alone, in milliseconds, and says so in one line; only then does it
try a hub, load weights or start training. ``mt-repro train`` and every table cell run
``check_run_inputs``; the benchmarks and ``mt-repro seam`` check their models, files and output
folders the same way. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, MissingPackageError
from .records import InputError, read_json

if TYPE_CHECKING:
    from .config import MTConfig

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")
HEADS = {"policy": ("ForCausalLM", "a causal LM"),
         "reward": ("ForSequenceClassification", "a reward model with a one-logit head")}
WORLD = "world"  # models.policy / models.reward value that means the gold world's pi_0 / r_0


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (one TCP connection to HF_ENDPOINT), or None.

    A download that cannot connect retries for half a minute, logging each retry, before it fails; this
    finds the same in a moment. Behind a proxy the direct connection proves nothing, so it is not tried.
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = urllib.parse.urlsplit(endpoint)
    try:
        with socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                      timeout=timeout):
            return None
    except OSError as e:
        return f"the hub {endpoint} is unreachable ({e.strerror or e})"


def check_hub(what: str, instead: str) -> None:
    """Before a download from the hub: an unreachable hub is one line naming ``what`` and what to give
    ``instead``. Offline (HF_HUB_OFFLINE) the libraries read their cache and say when it is empty."""
    if offline():
        return
    why = hub_unreachable()
    if why:
        raise InputError(f"{what}: {why}; {instead} (or set HF_HUB_OFFLINE=1 to use a cached copy)")


def check_hub_model(model: str, role: str) -> None:
    """Before a model is loaded: a hub id that is not cached needs a reachable hub."""
    if not Path(model).expanduser().exists() and not _cached(model):
        check_hub(f"{role} model {model!r}", "give a local model folder")


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` whose owner is not a local folder (``runs/x`` with ``runs/`` present is a path)."""
    return bool(HUB_ID.match(name)) and not Path(name).parent.exists()


def check_model(model: str, kind: str, role: str | None = None, key: str | None = None) -> None:
    """A local model folder is complete and has the head ``kind`` ("policy" or "reward") needs; a name that
    is no folder must be a hub id (and, offline, one in the Hugging Face cache). ``key`` names the setting
    that gave the model (e.g. ``models.reward``) in the message."""
    label = f"{role or kind} model {model!r}" + (f" ({key})" if key else "")
    path = Path(model).expanduser()
    if not path.exists():
        if not looks_like_hub_id(model):
            raise InputError(f"{label}: no such folder (give an existing model folder or a hub id owner/name)")
        if offline() and not _cached(model):
            raise InputError(f"{label}: no such folder, and the hub is offline (HF_HUB_OFFLINE) with no cached "
                             f"copy; give a local model folder")
        return
    if not path.is_dir():
        raise InputError(f"{label}: a file, not a model folder (a folder with config.json)")
    if not (path / "config.json").exists():
        raise InputError(f"{label}: the folder has no config.json, so it is not a saved transformers model")
    config = read_json(path / "config.json")
    if not isinstance(config, dict):
        raise InputError(f"{path / 'config.json'}: expected a JSON object")
    suffix, wanted = HEADS[kind]
    architectures = config.get("architectures") or []
    if architectures and not any(isinstance(a, str) and a.endswith(suffix) for a in architectures):
        raise InputError(f"{label} is a {architectures[0]}, not {wanted} (…{suffix})")
    labels = config.get("id2label")
    if kind == "reward" and isinstance(labels, dict) and len(labels) != 1:
        raise InputError(f"{label} has {len(labels)} output logits; expected one")
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise InputError(f"{label} has no tokenizer ({' or '.join(TOKENIZER_FILES[:2])}); save the tokenizer "
                         f"beside the weights")
    if not any(next(path.glob(pattern), None) for pattern in WEIGHT_PATTERNS):
        raise InputError(f"{label} has no weights (model.safetensors or pytorch_model.bin); save the model with "
                         f"save_pretrained")


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
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {path}: permission denied; make it readable")
    return p


def check_out_dir(path: str | Path, what: str) -> Path:
    """A folder to write into: an existing folder, or a path where one can be made (never a file, nor under one)."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {path}: a file, not a folder; give a folder (it is made when missing)")
    existing = next((q for q in (p, *p.parents) if q.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"{what} {path}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: {existing} is not writable")
    return p


def check_unfinished_out_dir(path: str | Path, what: str) -> Path:
    """``check_out_dir`` for a command that cannot resume: a folder that already holds its ``results.json`` is
    finished work, which a rerun would overwrite."""
    p = check_out_dir(path, what)
    if (p / "results.json").exists():
        raise InputError(f"{what} {path}: already holds results.json from an earlier run; give another folder "
                         "or remove that one")
    return p


def check_world(cfg) -> Path:
    """The gold world's settings that only the world's code knows (its task families) and its folder; returns the
    folder. Imports the world's code, so call it where the world is about to be used."""
    from .world.build import MANIFEST, world_dir
    from .world.tasks import FAMILIES

    unknown = [f for f in cfg.families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"world.families: unknown task famil{'y' if len(unknown) == 1 else 'ies'} "
                          f"{', '.join(map(repr, unknown))}; known: {', '.join(FAMILIES)}")
    return check_world_dir(world_dir(cfg), MANIFEST)


def check_world_dir(folder: str | Path, manifest: str) -> Path:
    """A gold-world folder: absent (it is built there), empty, or a built world (with its ``manifest`` file);
    never a file, nor a folder of other files."""
    p = check_out_dir(folder, "world folder (world.dir)")
    if p.is_dir() and not (p / manifest).exists() and any(not c.name.startswith(".") for c in p.iterdir()):
        raise InputError(f"world folder (world.dir) {folder} holds files but no {manifest}: not a gold world; "
                         "set world.dir to a new or empty folder")
    return p


def check_data_path(source: str, what: str, suffixes: Sequence[str]) -> None:
    """A data source that names a local file must be one with a known suffix; a hub id passes (read later)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return  # a saved dataset folder; its loader says what is wrong with it
    if path.exists() or path.suffix or not looks_like_hub_id(source):
        check_file(path, what)
        if path.suffix not in suffixes:
            raise InputError(f"{what} {source}: expected a {', '.join(suffixes)} file")


def check_run_inputs(cfg: MTConfig, run_dir: str | Path, launcher: Sequence[str] | None = None) -> None:
    """What a run needs, checked on the disk before the world is built, a model loads or a hub is asked:
    the run directory, the world folder, the initial models, the prompt file, the generation backend and
    the launcher."""
    from .config import MTConfig
    from .data import LOCAL_SUFFIXES
    from .rundir import RunDir

    RunDir.check(run_dir, cfg.to_dict(), MTConfig().to_dict())
    m = cfg.models
    world = cfg.run.env == "world"
    if world:
        check_world(cfg.world)
    for key, kind in (("policy", "policy"), ("reward", "reward")):
        model = getattr(m, key)
        if model == WORLD:
            if not world:
                raise ConfigError(f"models.{key}={WORLD!r} is the gold world's model; it needs run.env=world "
                                  f"(or give a model folder or hub id)")
            continue
        check_model(model, kind, key=f"models.{key}")
    if not world:
        check_data_path(cfg.data.prompts, "data.prompts", tuple(LOCAL_SUFFIXES))
    if cfg.sampling.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise MissingPackageError("sampling.backend=vllm needs vllm, which is not installed: pip install "
                                  "'mt-repro[vllm]' (GPU machines only), or set sampling.backend=transformers")
    if launcher and shutil.which(launcher[0]) is None:
        raise InputError(f"--launcher {' '.join(launcher)}: {launcher[0]!r} is not a program on PATH")
