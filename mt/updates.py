"""The three updates, each a thin wrapper over its TRL trainer: DPO for the policy (E-step), Bradley-Terry
for the reward model (M-step), and supervised fine-tuning (the gold world's pi_0, a judge's training).

DPO's reference is the starting policy (TRL reloads it when ``ref_model`` is None) or a fixed one
passed in; a candidate checkpoint is saved every ``save_steps`` optimiser steps and at the end, and
model selection chooses among them. The RM loss is TRL's plain BT loss, -log sigmoid(r(x, y_w) -
r(x, y_l)), with no margin term. Under a launcher (``accelerate launch ...``) the same call runs on
every rank (``mt.launch``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import EStepConfig, ModelsConfig, MStepConfig, UpdateConfig
from .launch import run_launched
from .modeling import load_causal_lm, load_reward_model, load_tokenizer, release_memory
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
        return run_launched("mt.updates:train_dpo", launcher, Path(output_dir) / "launch", policy_path=policy_path,
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


RM_METRICS = {"accuracy": "rm_train_accuracy", "margin": "rm_train_margin"}


def reward_config(cfg: MStepConfig, output_dir: str, seed: int, num_examples: int, **overrides: Any):
    from trl import RewardConfig

    kwargs = training_kwargs(cfg, output_dir, seed, num_examples)
    kwargs.update(save_strategy="no", center_rewards_coefficient=None)
    kwargs.update(overrides)
    return RewardConfig(**kwargs)


def train_reward_model(
    init_path: str,
    pairs: list[dict[str, Any]],
    cfg: MStepConfig,
    models: ModelsConfig,
    output_dir: Path,
    seed: int,
    trainer_cls=None,
    reporter: Reporter = QUIET,
    extra_columns: tuple[str, ...] = (),
    launcher: Sequence[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train from ``init_path`` and save the RM (with its tokenizer) under ``output_dir/model``.

    ``trainer_cls`` and ``extra_columns`` let a method add a loss term (RLP-UML's multi-view loss);
    ``launcher`` runs the same call on every rank of a launched process group (``mt.launch``).
    """
    from trl import RewardTrainer

    if not pairs:
        raise ValueError("the M-step has no pairs to train on (did the filter drop every pseudo-pair?)")
    if launcher:
        return run_launched("mt.updates:train_reward_model", launcher, Path(output_dir) / "launch",
                            init_path=init_path, pairs=pairs, cfg=cfg, models=models, output_dir=output_dir,
                            seed=seed, trainer_cls=trainer_cls, extra_columns=extra_columns)
    # The config first: under DeepSpeed ZeRO-3 it must exist when the model loads, so loading shards.
    args = reward_config(cfg, str(output_dir / "trainer"), seed, len(pairs))
    tokenizer = load_tokenizer(init_path, models.trust_remote_code)
    model = load_reward_model(init_path, models.dtype, models.attn_implementation, models.trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.train()
    trainer = (trainer_cls or RewardTrainer)(
        model=model,
        args=args,
        train_dataset=preference_dataset(pairs, extra_columns),
        processing_class=tokenizer,
        callbacks=[RichTrainerCallback(reporter, "M-step RM")],
    )
    quiet_trainer(trainer)
    trainer.train()
    metrics = log_summary(trainer.state.log_history, RM_METRICS)
    metrics["rm_steps"] = trainer.state.global_step
    metrics["rm_pairs_used"] = len(trainer.train_dataset)
    metrics["rm_pairs_dropped_too_long"] = len(pairs) - len(trainer.train_dataset)
    out = output_dir / "model"
    trainer.save_model(str(out))  # writes the tokenizer too (it is the trainer's processing_class)
    shutil.rmtree(output_dir / "trainer", ignore_errors=True)
    del trainer, model
    release_memory()
    return out, metrics


def train_sft(model, tokenizer, examples: list[dict[str, Any]], cfg: UpdateConfig, output_dir: Path, seed: int,
              reporter: Reporter = QUIET, description: str = "SFT", max_steps: int | None = None,
              **overrides: Any) -> dict[str, Any]:
    """SFT with TRL's SFTTrainer on prompt/completion rows (loss on the completion only); saves to ``output_dir``.

    ``model`` is a loaded causal LM or a path; ``max_steps`` replaces ``cfg.epochs`` when given.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    kwargs = training_kwargs(cfg, str(output_dir.parent / f"{output_dir.name}_work"), seed, len(examples))
    kwargs.update(save_strategy="no", **overrides)
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    trainer = SFTTrainer(model=model, args=SFTConfig(**kwargs), train_dataset=Dataset.from_list(examples),
                         processing_class=tokenizer, callbacks=[RichTrainerCallback(reporter, description)])
    quiet_trainer(trainer)
    trainer.train()
    trainer.save_model(str(output_dir))
    trainer.processing_class.save_pretrained(str(output_dir))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {**log_summary(trainer.state.log_history, {}), "sft_steps": trainer.state.global_step,
               "sft_examples": len(examples)}
    if losses:
        metrics["loss_first"], metrics["loss_last"] = losses[0], losses[-1]
    shutil.rmtree(kwargs["output_dir"], ignore_errors=True)
    del trainer
    release_memory()
    return metrics
