"""M-step update: Bradley-Terry training of r_t on the filtered pseudo-pairs, with TRL's RewardTrainer.

r_t starts from r_{t-1} (warm start) or from the base RM, by config. The loss is TRL's plain BT
loss, -log sigmoid(r(x, y_w) - r(x, y_l)), with no margin term.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ModelsConfig, MStepConfig
from .estep import preference_dataset
from .launch import run_launched
from .modeling import load_reward_model, load_tokenizer, release_memory
from .progress import QUIET, Reporter, RichTrainerCallback, quiet_trainer
from .trainer_args import log_summary, training_kwargs

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
        return run_launched("mt.mstep:train_reward_model", launcher, Path(output_dir) / "launch",
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
