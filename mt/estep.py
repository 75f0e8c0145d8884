"""E-step update: DPO from pi_{t-1} on RM-labelled pairs, with TRL's DPOTrainer.

The reference is pi_{t-1} (TRL reloads the starting checkpoint when ``ref_model`` is None) or a
fixed pi_0. A candidate checkpoint is saved every ``save_steps`` optimiser steps and at the end;
model selection chooses among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import EStepConfig, ModelsConfig
from .launch import run_launched
from .modeling import load_causal_lm, load_tokenizer, release_memory
from .progress import QUIET, Reporter, RichTrainerCallback, quiet_trainer
from .trainer_args import log_summary, training_kwargs

DPO_METRICS = {
    "rewards/accuracies": "dpo_reward_accuracy",
    "rewards/margins": "dpo_reward_margin",
    "rewards/chosen": "dpo_reward_chosen",
    "rewards/rejected": "dpo_reward_rejected",
}


def preference_dataset(pairs: list[dict[str, Any]], extra_columns: tuple[str, ...] = ()):
    """Conversational rows, so TRL renders them with the model's chat template as generation does."""
    from datasets import Dataset

    return Dataset.from_list([
        {
            "prompt": p["prompt"],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
            **{c: p[c] for c in extra_columns},
        }
        for p in pairs
    ])


def dpo_config(cfg: EStepConfig, output_dir: str, seed: int, num_examples: int, **overrides: Any):
    from trl import DPOConfig

    kwargs = training_kwargs(cfg, output_dir, seed, num_examples)
    kwargs.update(
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        save_strategy="steps",
        save_steps=cfg.save_steps,
    )
    kwargs.update(overrides)
    return DPOConfig(**kwargs)


def train_dpo(
    policy_path: str,
    pairs: list[dict[str, Any]],
    cfg: EStepConfig,
    models: ModelsConfig,
    output_dir: Path,
    seed: int,
    reference_path: str | None = None,
    trainer_cls=None,
    reporter: Reporter = QUIET,
    extra_columns: tuple[str, ...] = (),
    dpo_overrides: dict[str, Any] | None = None,
    launcher: Sequence[str] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Train and return the candidate checkpoint folders (in step order) and the training metrics.

    ``trainer_cls``, ``extra_columns`` and ``dpo_overrides`` let a method change the loss (SPPO) while
    keeping everything else of the E-step as it is. With ``launcher`` (e.g. ``accelerate launch ...``)
    the same call runs on every rank of a launched process group (``mt.launch``).
    """
    from trl import DPOTrainer

    if not pairs:
        raise ValueError("the E-step has no preference pairs to train on (every prompt's rewards tied?)")
    if launcher:
        return run_launched("mt.estep:train_dpo", launcher, Path(output_dir) / "launch", policy_path=policy_path,
                            pairs=pairs, cfg=cfg, models=models, output_dir=output_dir, seed=seed,
                            reference_path=reference_path, trainer_cls=trainer_cls, extra_columns=extra_columns,
                            dpo_overrides=dpo_overrides)
    # The config first: under DeepSpeed ZeRO-3 it must exist when the model loads, so loading shards.
    args = dpo_config(cfg, str(output_dir), seed, len(pairs), **(dpo_overrides or {}))
    tokenizer = load_tokenizer(policy_path, models.trust_remote_code)
    model = load_causal_lm(policy_path, models.dtype, models.attn_implementation, models.trust_remote_code)
    model.train()
    ref_model = None
    if reference_path is not None and reference_path != policy_path:
        ref_model = load_causal_lm(reference_path, models.dtype, models.attn_implementation, models.trust_remote_code)
    trainer = (trainer_cls or DPOTrainer)(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=preference_dataset(pairs, extra_columns),
        processing_class=tokenizer,
        callbacks=[RichTrainerCallback(reporter, "E-step DPO")],
    )
    quiet_trainer(trainer)
    trainer.train()
    metrics = log_summary(trainer.state.log_history, DPO_METRICS)
    metrics["dpo_steps"] = trainer.state.global_step
    used = trainer.train_dataset
    metrics["dpo_pairs_used"] = len(used)
    metrics["dpo_pairs_dropped_prompt_too_long"] = len(pairs) - len(used)
    metrics["dpo_pairs_truncated"] = sum(
        len(p) + max(len(c), len(r)) > cfg.max_length
        for p, c, r in zip(used["prompt_ids"], used["chosen_ids"], used["rejected_ids"], strict=True)
    )
    candidates = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    del trainer, model, ref_model
    release_memory()
    return candidates, metrics
