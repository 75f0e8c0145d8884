"""Typed configuration for a Mutual-Taught run.

Layers, later wins: dataclass defaults (the paper's values) -> a preset file -> ``--config FILE``
-> ``--set section.key=value``; the generic merging and checking is ``mt.options``. Every field carries ``help``; fields the paper does not state carry
``reconstructed=True`` (see ../shared/spec/mutual-taught.md) so they are printed as such.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import (
    ConfigError,
    as_table,
    check_fields,
    describe,
    load_section,
    merge,
    option,
    parse_override,
    read_toml,
)

__all__ = ["ConfigError", "MTConfig", "describe", "load_config", "load_section"]

PRESET_DIR = Path(__file__).parent / "presets"
SEED_MAX = 2**31 - 1  # numpy takes seeds below 2**32, and the world adds small offsets to its own
LR_HELP = "Peak learning rate; 0 leaves the weights as they start (a control)."


# ---------------------------------------------------------------- run
@dataclass
class RunConfig:
    name: str = option("mutual-taught", help="Run name; the run directory defaults to runs/<name>.")
    seed: int = option(42, help="Seed for splits, sampling and training; each stage derives its own from it.",
                   ge=0, le=SEED_MAX)
    env: str = option(
        "prompts",
        help="Where prompts and initial models come from: prompts = data.prompts and models.*; world = the CPU gold "
        "world (its prompts, pi_0, r_0 and gold reward).",
        choices=["prompts", "world"],
    )
    evaluation: str = option(
        "env",
        help="How (pi_t, r_t) are measured: env = the environment's own measurements (the gold world's, every "
        "iteration; none for plain prompts); benchmarks = the final policy and RM through the benchmarks, judge "
        "and data that [bench] names (AlpacaEval-2 LC, Arena-Hard, RewardBench).",
        choices=["env", "benchmarks"],
    )
    iterations: int = option(
        2,
        help="Maximum EM iterations. The paper's main result is its 2nd iteration (S2); the stop rule may end sooner.",
        reconstructed=True, ge=1,
    )


# ---------------------------------------------------------------- models
@dataclass
class ModelsConfig:
    policy: str = option("meta-llama/Meta-Llama-3-8B-Instruct", help="Initial policy pi_0: hub id or local path.")
    reward: str = option("sfairXC/FsfairX-LLaMA3-RM-v0.1", help="Initial reward model r_0 (one-logit head): hub id or path.")
    dtype: str = option("auto", help="Weights dtype; auto = bfloat16 on GPU, float32 on CPU.",
                    choices=["auto", "float32", "bfloat16", "float16"])
    attn_implementation: str | None = option(None, help="Passed to from_pretrained (e.g. flash_attention_2); None = default.")
    trust_remote_code: bool = option(False, help="Allow model repositories that ship code.")


# ---------------------------------------------------------------- data
@dataclass
class DataConfig:
    prompts: str = option(
        "HuggingFaceH4/ultrafeedback_binarized",
        help="Prompt source: a hub dataset id or a local .jsonl/.json/.csv/.parquet file (unused by run.env=world).",
    )
    hub_split: str = option("train_prefs", help="Split read when `prompts` is a hub id or a dataset folder.")
    prompt_column: str = option("prompt", help="Column holding the prompt text.")
    id_column: str | None = option(None, help="Column with a stable prompt id; None = a hash of the prompt text.")
    max_prompts: int | None = option(None, help="Use at most this many prompts (after shuffling); None = all.",
                                 ge=1)
    num_parts: int = option(3, help="Disjoint training parts the prompts are split into (paper: three of ~20K).",
                        ge=1)
    selection_size: int = option(
        2000, help="Prompts held out for checkpoint selection (the gold world fixes its own selection set). "
        "Without select.enabled the set still shows the kept checkpoint's win rate.", reconstructed=True, ge=1)
    pm_parts: list[int] = option(
        help="Part (1-based) used by the PM update of iteration t, cycled: iteration t uses pm_parts[(t-1) % len].",
        reconstructed=True, factory=lambda: [1, 2, 3],
    )
    rm_parts: list[int] = option(
        help="Part used by the RM update of iteration t, cycled like pm_parts. Default: parts 1, 2 feed the first "
        "two PM updates and part 3 the first RM update; later iterations rotate.",
        reconstructed=True, factory=lambda: [3, 1, 2],
    )
    max_prompt_tokens: int = option(1024, help="Prompts longer than this (chat-templated) are dropped and counted.",
                                reconstructed=True, ge=1)


# ---------------------------------------------------------------- sampling
@dataclass
class SamplingConfig:
    backend: str = option("transformers", help="Generation backend.", choices=["transformers", "vllm"])
    k: int = option(5, help="Responses sampled per prompt in the E-step (a pair needs two).", ge=2)
    temperature: float = option(0.8, help="Sampling temperature; 0 = greedy.", ge=0)
    top_p: float = option(0.95, help="Nucleus sampling threshold.", gt=0, le=1)
    max_new_tokens: int = option(4096, help="Maximum tokens per response.", reconstructed=True, ge=1)
    batch_size: int = option(64, help="Prompts per generate() call (transformers backend); sorted by length.",
                         ge=1)
    tensor_parallel_size: int = option(1, help="vLLM tensor parallelism.", ge=1)
    gpu_memory_utilization: float = option(0.9, help="vLLM GPU memory fraction.", gt=0, le=1)


# ---------------------------------------------------------------- updates
@dataclass
class UpdateConfig:
    """What the DPO and the RM updates share; each maps onto a TRL config."""

    learning_rate: float = option(1e-6, help=LR_HELP, ge=0)
    global_batch_size: int = option(
        128, help="Examples per optimiser step over all devices (accumulation derived).", ge=1)
    per_device_batch_size: int = option(8, help="Examples per device per forward pass.", ge=1)
    epochs: float = option(1.0, help="Passes over the stage's pairs.", gt=0)
    max_length: int = option(
        2048, help="Prompt + response tokens; longer pairs are truncated/dropped by TRL and counted.", ge=1)
    lr_scheduler: str = option("cosine", help="transformers scheduler name.")
    warmup_ratio: float = option(0.1, help="Fraction of steps spent warming up.", ge=0, le=1)
    weight_decay: float = option(0.0, help="AdamW weight decay.", ge=0)
    gradient_checkpointing: bool = option(True, help="Trade compute for memory.")
    bf16: bool | None = option(None, help="bf16 mixed precision; None = on when a GPU supports it.")
    logging_steps: int = option(10, help="Log loss every N optimiser steps.", ge=1)
    optim: str = option("adamw_torch", help="transformers optimiser name.")


@dataclass
class EStepConfig(UpdateConfig):
    pair_rule: str = option(
        "mt",
        help="mt: rejected = lowest reward, chosen = shortest response above the prompt's mean reward; "
        "max_min: highest vs lowest (RLHFlow).",
        reconstructed=True, choices=["mt", "max_min"],
    )
    learning_rate: float = option(7e-7, help=LR_HELP, reconstructed=True, ge=0)
    beta: float = option(0.01, help="DPO beta.", reconstructed=True, gt=0)
    loss_type: str = option("sigmoid", help="TRL DPO loss type.")
    reference: str = option("previous", help="DPO reference: previous policy pi_{t-1} (paper) or fixed pi_0.",
                        choices=["previous", "initial"])
    save_steps: int = option(50, help="Save a candidate checkpoint every N optimiser steps (the final one always).",
                         reconstructed=True, ge=1)


@dataclass
class SelectConfig:
    enabled: bool = option(True, help="Pick the best candidate checkpoint; off = keep the final one (ablation).")
    tau: float = option(0.6, help="Stop the run when the best candidate's win rate over pi_{t-1} is below tau.",
                    reconstructed=True, ge=0, le=1)
    stop_rule: bool = option(True, help="Apply the stop rule (needs enabled=true).")
    temperature: float | None = option(
        None, help="Sampling temperature on the selection set; None = sampling.temperature.", ge=0)


@dataclass
class MStepConfig(UpdateConfig):
    learning_rate: float = option(2e-6, help=LR_HELP, reconstructed=True, ge=0)
    global_batch_size: int = option(512, help="Pairs per optimiser step over all devices.", reconstructed=True,
                                ge=1)
    enabled: bool = option(True, help="Update the RM; off = the RM stays r_0 (ablation 'w/o RM update').")
    filter: bool = option(True, help="Apply the variance-adaptive filter; off = keep every pseudo-pair (ablation).")
    eps: str = option(
        "reward_std",
        help="eps_t definition: std of r_{t-1}(x, y_{t-1}) over the split, or std of the margins delta.",
        reconstructed=True, choices=["reward_std", "margin_std"],
    )
    init: str = option("previous", help="r_t starts from r_{t-1} (warm start) or from the base RM r_0.",
                   reconstructed=True, choices=["previous", "base"])
    include_estep_pairs: bool = option(True, help="Add the E-step's RM-labelled pairs to the RM's training data.",
                                   reconstructed=True)
    labels: str = option(
        "pseudo",
        help="Who orients the M-step pairs: pseudo = y_t beats y_{t-1} (the paper); gold = the gold reward (an "
        "oracle control; needs the gold world); random = a coin flip (a no-information control).",
        choices=["pseudo", "gold", "random"],
    )
    heldout_fraction: float = option(0.05, help="Fraction of the stage's pairs held out to report RM accuracy.",
                                 ge=0, lt=1)
    samples_per_prompt: int = option(
        1, help="Pseudo-pairs per RM-split prompt (y_t, y_{t-1} sampled this many times).", ge=1)


# ---------------------------------------------------------------- world (CPU gold-reward world)
@dataclass
class WorldConfig:
    dir: str | None = option(None, help="World folder; None = $MT_REPRO_CACHE (or ~/.cache/mt-repro)/worlds/<digest>.")
    seed: int = option(0, help="World seed: prompts, demonstrations, initial models.", ge=0, le=SEED_MAX)
    families: list[str] = option(help="Task families.", factory=lambda: ["add", "sort", "reverse"])
    train_prompts: int = option(600, help="RL prompts for the three training parts together.", ge=1)
    selection_prompts: int = option(60, help="Selection-set prompts.", ge=1)
    eval_prompts: int = option(150, help="Evaluation prompts (the AlpacaEval analogue).", ge=1)
    rm_build_prompts: int = option(600, help="Prompts whose pi_0 samples make the initial RM's training pairs.",
                               ge=1)
    rm_test_prompts: int = option(
        300, help="Prompts of the fixed gold-labelled RM test set (the RewardBench analogue).", ge=1)
    shortcut_strength: float = option(
        0.65,
        help="Among the initial RM's training pairs where exactly one side opens with the marker, the fraction "
        "whose marked side is the gold-preferred one; 0.5 = no shortcut, 1.0 = a perfect spurious cue.",
        ge=0, le=1,
    )
    marker_penalty: float = option(0.1, help="Gold reward a response loses for opening with the marker.", ge=0)
    demo_accuracy: float = option(0.55, help="Fraction of SFT demonstrations that are correct.", ge=0, le=1)
    demo_mistakes: float = option(
        0.25, help="Fraction that follow the family's systematic mistake; the rest are random corruptions.",
        ge=0, le=1)
    sft_examples: int = option(21000, help="SFT demonstrations for pi_0.", ge=1)
    sft_steps: int = option(2000, help="SFT optimiser steps for pi_0 (batch 64).", ge=1)
    sft_learning_rate: float = option(3e-3, help="SFT peak learning rate.", gt=0)
    rm_samples: int = option(8, help="pi_0 samples per RM-build prompt (pairs need two).", ge=2)
    rm_epochs: float = option(4.0, help="Bradley-Terry epochs for r_0 (initialised from pi_0's backbone).", gt=0)
    rm_learning_rate: float = option(1e-3, help="r_0 learning rate.", gt=0)
    eval_samples: int = option(4, help="Samples per evaluation prompt when measuring a policy.", ge=1)
    hidden_size: int = option(64, help="Tiny model width, a multiple of its 4 attention heads.", ge=4)
    layers: int = option(2, help="Tiny model depth.", ge=1)
    max_new_tokens: int = option(24, help="Longest response the world's tasks need.", ge=1)


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


def resolve_preset(preset: str) -> Path:
    path = Path(preset)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = PRESET_DIR / f"{preset}.toml"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
    raise ConfigError(f"unknown preset {preset!r}; known presets: {known} (or give a path to a .toml file)")


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    tables: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
) -> MTConfig:
    """Build a validated config: defaults, then preset, then ``tables`` (e.g. a recipe's), then file, then
    overrides."""
    cfg = MTConfig.__new__(MTConfig)
    for f in dataclasses.fields(MTConfig):
        setattr(cfg, f.name, f.default_factory())  # type: ignore[misc]
    layers: list[dict[str, Any]] = []
    if preset:
        layers.append(read_toml(resolve_preset(preset)))
    layers += [copy.deepcopy(t) for t in tables]
    if config_file:
        layers.append(read_toml(Path(config_file)))
    layers += [as_table(*parse_override(text)) for text in overrides]
    for layer in layers:
        merge(cfg, layer)
    cfg.validate()
    return cfg
