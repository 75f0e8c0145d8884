"""One place that turns our update configs into the arguments TRL's configs share."""

from __future__ import annotations

import os
from typing import Any

import torch

from .config import UpdateConfig


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def training_kwargs(cfg: UpdateConfig, output_dir: str, seed: int, num_examples: int) -> dict[str, Any]:
    """Keyword arguments common to DPOConfig and RewardConfig (both are TrainingArguments)."""
    per_step = cfg.per_device_batch_size * world_size()
    accumulation = max(1, cfg.global_batch_size // per_step)
    on_gpu = torch.cuda.is_available()
    bf16 = cfg.bf16 if cfg.bf16 is not None else (on_gpu and torch.cuda.is_bf16_supported())
    return dict(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=min(cfg.per_device_batch_size, max(1, num_examples)),
        gradient_accumulation_steps=accumulation,
        num_train_epochs=cfg.epochs,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers reads a value below 1 as a fraction of all steps
        weight_decay=cfg.weight_decay,
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=bf16,
        use_cpu=not on_gpu,
        logging_steps=cfg.logging_steps,
        optim=cfg.optim,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        save_only_model=True,
        max_length=cfg.max_length,
    )


def log_summary(log_history: list[dict[str, Any]], keys: dict[str, str]) -> dict[str, Any]:
    """Last logged value of each TRL metric (renamed), the first loss and the step count."""
    out: dict[str, Any] = {}
    steps = [h for h in log_history if "loss" in h]
    if steps:
        out["loss_first"] = steps[0]["loss"]
        out["loss_last"] = steps[-1]["loss"]
        for src, dst in keys.items():
            values = [h[src] for h in steps if src in h]
            if values:
                out[dst] = values[-1]
    final = [h for h in log_history if "train_loss" in h]
    if final:
        out["train_loss"] = final[-1]["train_loss"]
    return out
