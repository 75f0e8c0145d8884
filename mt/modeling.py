"""Loading models and tokenizers the way a hub id would be loaded, on the right device and dtype."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import UserError, one_line
from .records import InputError


def device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def torch_dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def check_model_path(path: str, role: str) -> None:
    """A local-looking path that does not exist is a typo, not a hub id: say so before transformers does."""
    p = Path(path)
    looks_local = path.startswith((".", "/", "~")) or p.suffix or (p.parent != Path(".") and p.parent.exists())
    if looks_local and not p.expanduser().exists():
        raise InputError(f"{role} model path {path!r} does not exist (give a hub id or an existing folder)")


def _load_errors() -> tuple[type[BaseException], ...]:
    """What from_pretrained raises for a folder or hub id it cannot use (not found, unreachable, not a model,
    a corrupt weights file), as opposed to a bug."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)
    try:
        from safetensors import SafetensorError

        errors += (SafetensorError,)
    except ImportError:
        pass
    return errors


@contextmanager
def loading(path: str, role: str) -> Iterator[None]:
    """One InputError naming the model and the next step when transformers cannot load it."""
    from .checks import check_hub_model

    check_hub_model(path, role)
    try:
        yield
    except UserError:
        raise
    except _load_errors() as e:
        hint = ("the hub is unreachable or the id is wrong: give a local model folder, or check the id and the "
                "network" if not Path(path).expanduser().exists() else
                "the folder is incomplete or corrupt: save the model again with save_pretrained")
        raise InputError(f"{role} model {path!r} could not be loaded ({type(e).__name__}: "
                         f"{one_line(e)[:300]}); {hint}") from e


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    check_model_path(path, "model")
    with loading(path, "the tokenizer of"):
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str, dtype: str = "auto", attn_implementation: str | None = None,
                   trust_remote_code: bool = False):
    from transformers import AutoModelForCausalLM

    check_model_path(path, "policy")
    kwargs = {"dtype": torch_dtype(dtype), "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with loading(path, "policy"):
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.to(device()).eval()


def load_reward_model(path: str, dtype: str = "auto", attn_implementation: str | None = None,
                      trust_remote_code: bool = False):
    from transformers import AutoModelForSequenceClassification

    check_model_path(path, "reward")
    kwargs = {"dtype": torch_dtype(dtype), "trust_remote_code": trust_remote_code, "num_labels": 1}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with loading(path, "reward"):
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    if model.config.num_labels != 1:
        raise InputError(f"reward model {path!r} has {model.config.num_labels} output logits; expected one")
    return model.to(device()).eval()


def release_memory() -> None:
    """Call after dropping a stage's models, so peak memory is one stage's, not the sum."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
