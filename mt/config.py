"""Typed configuration for a Mutual-Taught run.

Layers, later wins: dataclass defaults (the paper's values) -> a preset file -> ``--config FILE``
-> ``--set section.key=value``. Every field carries ``help``; fields the paper does not state carry
``reconstructed=True`` (see ../shared/spec/mutual-taught.md) so they are printed as such.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .errors import UserError

PRESET_DIR = Path(__file__).parent / "presets"
SEED_MAX = 2**31 - 1  # numpy takes seeds below 2**32, and the world adds small offsets to its own
LR_HELP = "Peak learning rate; 0 leaves the weights as they start (a control)."


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names the key and what was expected."""


def _f(default: Any = dataclasses.MISSING, *, help: str, reconstructed: bool = False, choices=None,
       factory=None, gt=None, ge=None, lt=None, le=None):
    """A field whose metadata carries its help and its allowed values (``choices``, or bounds gt/ge/lt/le)."""
    meta = {"help": help, "reconstructed": reconstructed}
    if choices is not None:
        meta["choices"] = tuple(choices)
    meta.update({k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None})
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------- run
@dataclass
class RunConfig:
    name: str = _f("mutual-taught", help="Run name; the run directory defaults to runs/<name>.")
    seed: int = _f(42, help="Seed for splits, sampling and training; each stage derives its own from it.",
                   ge=0, le=SEED_MAX)
    env: str = _f(
        "prompts",
        help="Where prompts and initial models come from: prompts = data.prompts and models.*; world = the CPU gold "
        "world (its prompts, pi_0, r_0 and gold reward).",
        choices=["prompts", "world"],
    )
    evaluation: str = _f(
        "env",
        help="How (pi_t, r_t) are measured: env = the environment's own measurements (the gold world's, every "
        "iteration; none for plain prompts); benchmarks = the final policy and RM through the benchmarks, judge "
        "and data that [bench] names (AlpacaEval-2 LC, Arena-Hard, RewardBench).",
        choices=["env", "benchmarks"],
    )
    iterations: int = _f(
        2,
        help="Maximum EM iterations. The paper's main result is its 2nd iteration (S2); the stop rule may end sooner.",
        reconstructed=True, ge=1,
    )


# ---------------------------------------------------------------- models
@dataclass
class ModelsConfig:
    policy: str = _f("meta-llama/Meta-Llama-3-8B-Instruct", help="Initial policy pi_0: hub id or local path.")
    reward: str = _f("sfairXC/FsfairX-LLaMA3-RM-v0.1", help="Initial reward model r_0 (one-logit head): hub id or path.")
    dtype: str = _f("auto", help="Weights dtype; auto = bfloat16 on GPU, float32 on CPU.",
                    choices=["auto", "float32", "bfloat16", "float16"])
    attn_implementation: str | None = _f(None, help="Passed to from_pretrained (e.g. flash_attention_2); None = default.")
    trust_remote_code: bool = _f(False, help="Allow model repositories that ship code.")


# ---------------------------------------------------------------- data
@dataclass
class DataConfig:
    prompts: str = _f(
        "HuggingFaceH4/ultrafeedback_binarized",
        help="Prompt source: a hub dataset id or a local .jsonl/.json/.csv/.parquet file (unused by run.env=world).",
    )
    hub_split: str = _f("train_prefs", help="Split read when `prompts` is a hub id or a dataset folder.")
    prompt_column: str = _f("prompt", help="Column holding the prompt text.")
    id_column: str | None = _f(None, help="Column with a stable prompt id; None = a hash of the prompt text.")
    max_prompts: int | None = _f(None, help="Use at most this many prompts (after shuffling); None = all.",
                                 ge=1)
    num_parts: int = _f(3, help="Disjoint training parts the prompts are split into (paper: three of ~20K).",
                        ge=1)
    selection_size: int = _f(
        2000, help="Prompts held out for checkpoint selection (the gold world fixes its own selection set). "
        "Without select.enabled the set still shows the kept checkpoint's win rate.", reconstructed=True, ge=1)
    pm_parts: list[int] = _f(
        help="Part (1-based) used by the PM update of iteration t, cycled: iteration t uses pm_parts[(t-1) % len].",
        reconstructed=True, factory=lambda: [1, 2, 3],
    )
    rm_parts: list[int] = _f(
        help="Part used by the RM update of iteration t, cycled like pm_parts. Default: parts 1, 2 feed the first "
        "two PM updates and part 3 the first RM update; later iterations rotate.",
        reconstructed=True, factory=lambda: [3, 1, 2],
    )
    max_prompt_tokens: int = _f(1024, help="Prompts longer than this (chat-templated) are dropped and counted.",
                                reconstructed=True, ge=1)


# ---------------------------------------------------------------- sampling
@dataclass
class SamplingConfig:
    backend: str = _f("transformers", help="Generation backend.", choices=["transformers", "vllm"])
    k: int = _f(5, help="Responses sampled per prompt in the E-step (a pair needs two).", ge=2)
    temperature: float = _f(0.8, help="Sampling temperature; 0 = greedy.", ge=0)
    top_p: float = _f(0.95, help="Nucleus sampling threshold.", gt=0, le=1)
    max_new_tokens: int = _f(4096, help="Maximum tokens per response.", reconstructed=True, ge=1)
    batch_size: int = _f(64, help="Prompts per generate() call (transformers backend); sorted by length.",
                         ge=1)
    tensor_parallel_size: int = _f(1, help="vLLM tensor parallelism.", ge=1)
    gpu_memory_utilization: float = _f(0.9, help="vLLM GPU memory fraction.", gt=0, le=1)


# ---------------------------------------------------------------- updates
@dataclass
class UpdateConfig:
    """What the DPO and the RM updates share; each maps onto a TRL config."""

    learning_rate: float = _f(1e-6, help=LR_HELP, ge=0)
    global_batch_size: int = _f(
        128, help="Examples per optimiser step over all devices (accumulation derived).", ge=1)
    per_device_batch_size: int = _f(8, help="Examples per device per forward pass.", ge=1)
    epochs: float = _f(1.0, help="Passes over the stage's pairs.", gt=0)
    max_length: int = _f(
        2048, help="Prompt + response tokens; longer pairs are truncated/dropped by TRL and counted.", ge=1)
    lr_scheduler: str = _f("cosine", help="transformers scheduler name.")
    warmup_ratio: float = _f(0.1, help="Fraction of steps spent warming up.", ge=0, le=1)
    weight_decay: float = _f(0.0, help="AdamW weight decay.", ge=0)
    gradient_checkpointing: bool = _f(True, help="Trade compute for memory.")
    bf16: bool | None = _f(None, help="bf16 mixed precision; None = on when a GPU supports it.")
    logging_steps: int = _f(10, help="Log loss every N optimiser steps.", ge=1)
    optim: str = _f("adamw_torch", help="transformers optimiser name.")


@dataclass
class EStepConfig(UpdateConfig):
    pair_rule: str = _f(
        "mt",
        help="mt: rejected = lowest reward, chosen = shortest response above the prompt's mean reward; "
        "max_min: highest vs lowest (RLHFlow).",
        reconstructed=True, choices=["mt", "max_min"],
    )
    learning_rate: float = _f(7e-7, help=LR_HELP, reconstructed=True, ge=0)
    beta: float = _f(0.01, help="DPO beta.", reconstructed=True, gt=0)
    loss_type: str = _f("sigmoid", help="TRL DPO loss type.")
    reference: str = _f("previous", help="DPO reference: previous policy pi_{t-1} (paper) or fixed pi_0.",
                        choices=["previous", "initial"])
    save_steps: int = _f(50, help="Save a candidate checkpoint every N optimiser steps (the final one always).",
                         reconstructed=True, ge=1)


@dataclass
class SelectConfig:
    enabled: bool = _f(True, help="Pick the best candidate checkpoint; off = keep the final one (ablation).")
    tau: float = _f(0.6, help="Stop the run when the best candidate's win rate over pi_{t-1} is below tau.",
                    reconstructed=True, ge=0, le=1)
    stop_rule: bool = _f(True, help="Apply the stop rule (needs enabled=true).")
    temperature: float | None = _f(
        None, help="Sampling temperature on the selection set; None = sampling.temperature.", ge=0)


@dataclass
class MStepConfig(UpdateConfig):
    learning_rate: float = _f(2e-6, help=LR_HELP, reconstructed=True, ge=0)
    global_batch_size: int = _f(512, help="Pairs per optimiser step over all devices.", reconstructed=True,
                                ge=1)
    enabled: bool = _f(True, help="Update the RM; off = the RM stays r_0 (ablation 'w/o RM update').")
    filter: bool = _f(True, help="Apply the variance-adaptive filter; off = keep every pseudo-pair (ablation).")
    eps: str = _f(
        "reward_std",
        help="eps_t definition: std of r_{t-1}(x, y_{t-1}) over the split, or std of the margins delta.",
        reconstructed=True, choices=["reward_std", "margin_std"],
    )
    init: str = _f("previous", help="r_t starts from r_{t-1} (warm start) or from the base RM r_0.",
                   reconstructed=True, choices=["previous", "base"])
    include_estep_pairs: bool = _f(True, help="Add the E-step's RM-labelled pairs to the RM's training data.",
                                   reconstructed=True)
    labels: str = _f(
        "pseudo",
        help="Who orients the M-step pairs: pseudo = y_t beats y_{t-1} (the paper); gold = the gold reward (an "
        "oracle control; needs the gold world); random = a coin flip (a no-information control).",
        choices=["pseudo", "gold", "random"],
    )
    heldout_fraction: float = _f(0.05, help="Fraction of the stage's pairs held out to report RM accuracy.",
                                 ge=0, lt=1)
    samples_per_prompt: int = _f(
        1, help="Pseudo-pairs per RM-split prompt (y_t, y_{t-1} sampled this many times).", ge=1)


# ---------------------------------------------------------------- world (CPU gold-reward world)
@dataclass
class WorldConfig:
    dir: str | None = _f(None, help="World folder; None = $MT_REPRO_CACHE (or ~/.cache/mt-repro)/worlds/<digest>.")
    seed: int = _f(0, help="World seed: prompts, demonstrations, initial models.", ge=0, le=SEED_MAX)
    families: list[str] = _f(help="Task families.", factory=lambda: ["add", "sort", "reverse"])
    train_prompts: int = _f(600, help="RL prompts for the three training parts together.", ge=1)
    selection_prompts: int = _f(60, help="Selection-set prompts.", ge=1)
    eval_prompts: int = _f(150, help="Evaluation prompts (the AlpacaEval analogue).", ge=1)
    rm_build_prompts: int = _f(600, help="Prompts whose pi_0 samples make the initial RM's training pairs.",
                               ge=1)
    rm_test_prompts: int = _f(
        300, help="Prompts of the fixed gold-labelled RM test set (the RewardBench analogue).", ge=1)
    shortcut_strength: float = _f(
        0.65,
        help="Among the initial RM's training pairs where exactly one side opens with the marker, the fraction "
        "whose marked side is the gold-preferred one; 0.5 = no shortcut, 1.0 = a perfect spurious cue.",
        ge=0, le=1,
    )
    marker_penalty: float = _f(0.1, help="Gold reward a response loses for opening with the marker.", ge=0)
    demo_accuracy: float = _f(0.55, help="Fraction of SFT demonstrations that are correct.", ge=0, le=1)
    demo_mistakes: float = _f(
        0.25, help="Fraction that follow the family's systematic mistake; the rest are random corruptions.",
        ge=0, le=1)
    sft_examples: int = _f(21000, help="SFT demonstrations for pi_0.", ge=1)
    sft_steps: int = _f(2000, help="SFT optimiser steps for pi_0 (batch 64).", ge=1)
    sft_learning_rate: float = _f(3e-3, help="SFT peak learning rate.", gt=0)
    rm_samples: int = _f(8, help="pi_0 samples per RM-build prompt (pairs need two).", ge=2)
    rm_epochs: float = _f(4.0, help="Bradley-Terry epochs for r_0 (initialised from pi_0's backbone).", gt=0)
    rm_learning_rate: float = _f(1e-3, help="r_0 learning rate.", gt=0)
    eval_samples: int = _f(4, help="Samples per evaluation prompt when measuring a policy.", ge=1)
    hidden_size: int = _f(64, help="Tiny model width, a multiple of its 4 attention heads.", ge=4)
    layers: int = _f(2, help="Tiny model depth.", ge=1)
    max_new_tokens: int = _f(24, help="Longest response the world's tasks need.", ge=1)


# ---------------------------------------------------------------- top level
@dataclass
class MTConfig:
    run: RunConfig = field(default_factory=RunConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    estep: EStepConfig = field(default_factory=EStepConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    mstep: MStepConfig = field(default_factory=MStepConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    method: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Options of a reproduction method (SPPO's eta, ...), checked by that method's own "
                          "config dataclass.", "reconstructed": False},
    )
    bench: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "With run.evaluation=benchmarks: which benchmarks, the judge and the data (see "
                          "`mt-repro bench list`), checked by the benchmark evaluation's own config dataclass.",
                  "reconstructed": False},
    )

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        check_fields(self)
        d = self.data
        for name in ("pm_parts", "rm_parts"):
            parts = getattr(d, name)
            if not parts or any(not 1 <= p <= d.num_parts for p in parts):
                raise ConfigError(f"data.{name}={parts}: expected a non-empty list of parts in 1..{d.num_parts}")
        if self.select.stop_rule and not self.select.enabled:
            self.select.stop_rule = False
        for name in ("estep", "mstep"):
            u: UpdateConfig = getattr(self, name)
            if u.global_batch_size % u.per_device_batch_size:
                raise ConfigError(
                    f"{name}.global_batch_size={u.global_batch_size} is not a multiple of "
                    f"{name}.per_device_batch_size={u.per_device_batch_size}"
                )
        w = self.world
        if w.demo_accuracy + w.demo_mistakes > 1:
            raise ConfigError(f"world.demo_accuracy={w.demo_accuracy} + world.demo_mistakes="
                              f"{w.demo_mistakes}: expected a sum <= 1 (both are shares of all demos)")

    # -- views
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


_BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "lt": ("<", operator.lt),
           "le": ("<=", operator.le)}


def range_text(metadata: Any) -> str | None:
    """A field's range as errors and show-config print it: '> 0', '>= 1', 'in [0, 1)'; None if unbounded."""
    low = next((k for k in ("gt", "ge") if k in metadata), None)
    high = next((k for k in ("lt", "le") if k in metadata), None)
    if low and high:
        left, right = "(" if low == "gt" else "[", ")" if high == "lt" else "]"
        return f"in {left}{metadata[low]}, {metadata[high]}{right}"
    if low or high:
        return f"{_BOUNDS[low or high][0]} {metadata[low or high]}"
    return None


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every field against its declared choices and range (None passes: it means 'not set')."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, key + ".")
        elif "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, f.metadata['choices']))}")
        elif value is not None and not all(test(value, f.metadata[k]) for k, (_, test) in _BOUNDS.items()
                                           if k in f.metadata):  # written so that NaN fails too
            raise ConfigError(f"{key}={value!r}: expected {range_text(f.metadata)}")


# ---------------------------------------------------------------- loading
def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() == "none" and type(None) in args):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif not isinstance(value, list):
            value = [value]
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")


def _merge(obj: Any, data: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r}; known under {prefix or 'the top level'}: "
                              f"{', '.join(sorted(names))}")
        current = getattr(obj, key)
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a table of settings, got {value!r}")
            _deep_update(current, value)
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a table of settings, got {value!r}")
            _merge(current, value, full + ".")
        else:
            setattr(obj, key, _coerce(value, hints[key], full))


def _deep_update(table: dict[str, Any], layer: dict[str, Any]) -> None:
    """Merge a later layer into a free-form table key by key, so ``--set bench.x.limit=5`` keeps ``bench.x.data``."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            _deep_update(table[key], value)
        else:
            table[key] = value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value); the value is read as TOML when it parses, else as a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def resolve_preset(preset: str) -> Path:
    path = Path(preset)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = PRESET_DIR / f"{preset}.toml"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
    raise ConfigError(f"unknown preset {preset!r}; known presets: {known} (or give a path to a .toml file)")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: {e}") from None


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> MTConfig:
    """Build a validated config: defaults, then preset, then file, then overrides."""
    cfg = MTConfig.__new__(MTConfig)
    for f in dataclasses.fields(MTConfig):
        setattr(cfg, f.name, f.default_factory())  # type: ignore[misc]
    layers: list[dict[str, Any]] = []
    if preset:
        layers.append(read_toml(resolve_preset(preset)))
    if config_file:
        layers.append(read_toml(Path(config_file)))
    for text in overrides:
        keys, value = parse_override(text)
        nested: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            nested = {k: nested}
        layers.append(nested)
    for layer in layers:
        _merge(cfg, layer)
    cfg.validate()
    return cfg


def load_section(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """A typed section from a plain table, each field checked, e.g. a method's options from ``cfg.method``."""
    section = cls()
    _merge(section, data, prefix)
    check_fields(section, prefix)
    return section


def config_from_dict(data: dict[str, Any]) -> MTConfig:
    """Rebuild a saved (resolved) config, e.g. from a run directory."""
    cfg = load_config()
    _merge(cfg, data)
    cfg.validate()
    return cfg


def describe(cfg: Any, prefix: str = "") -> list[tuple[str, Any, str, bool]]:
    """Rows (key, value, help, reconstructed) for printing a resolved config."""
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, f"{prefix}{f.name}."))
        else:
            allowed = range_text(f.metadata)
            note = f.metadata.get("help", "") + (f" Allowed values: {allowed}." if allowed else "")
            rows.append((f"{prefix}{f.name}", value, note, f.metadata.get("reconstructed", False)))
    return rows
