"""The gold world's config section: its splits, regime, demonstrations and initial models."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option

SEED_MAX = 2**31 - 1  # numpy takes seeds below 2**32, and the world adds small offsets to its own


@dataclass
class WorldConfig:
    dir: str | None = option(None, help="World folder; None = $MT_REPRO_CACHE (or ~/.cache/mt-repro)/worlds/<digest>.")
    seed: int = option(0, help="World seed: prompts, demonstrations, initial models.", ge=0, le=SEED_MAX)
    regime: str = option(
        "shift",
        help="shift: no spurious cue, r_0 good on pi_0's samples and unsystematically wrong off them (the paper's "
        "premise); hack: r_0 rewards the marker, which gold charges (the cue is in the demonstrations, "
        "hack_marker_*, or in r_0's labels, hack_label_bias).",
        choices=["shift", "hack"],
    )
    families: list[str] = option(help="Task families.", factory=lambda: ["add", "sort", "reverse"])
    train_prompts: int = option(1500, help="RL prompts for the three training parts together.", ge=1)
    selection_prompts: int = option(
        300, help="Selection-set prompts (a win rate's standard error <= 3 points at one sample each).", ge=1)
    eval_prompts: int = option(600, help="Evaluation prompts (the AlpacaEval analogue).", ge=1)
    rm_build_prompts: int = option(
        4000, help="Prompts whose pi_0 samples make r_0's training pairs and its own test pairs.", ge=2)
    rm_own_test_share: float = option(
        0.15, help="Share of the RM-build prompts whose pairs are r_0's own test (split by prompt, not by pair).",
        gt=0, lt=1)
    rm_test_prompts: int = option(
        300, help="Prompts of the fixed gold-labelled RM test set (the RewardBench analogue).", ge=1)
    marker_penalty: float = option(0.1, help="Gold reward a response loses for opening with the marker `Sure! `.",
                                   ge=0)
    hack_marker_right: float = option(
        0.8, help="Hack regime: probability that a right demonstration opens with the marker.", ge=0, le=1)
    hack_marker_wrong: float = option(
        0.2, help="Hack regime: probability that a wrong demonstration opens with the marker.", ge=0, le=1)
    hack_label_bias: float = option(
        0.0, help="Hack regime: what the labeller of r_0's training pairs adds to a marked response's gold reward (a "
        "rater who likes `Sure! `), so the cue lives in r_0's labels rather than in pi_0's answers; 0 = gold's order.",
        ge=0)
    demo_accuracy: float = option(0.55, help="Fraction of SFT demonstrations that are correct.", ge=0, le=1)
    demo_mistakes: float = option(
        0.30, help="Fraction that follow the family's systematic mistake; the rest are random corruptions.",
        ge=0, le=1)
    sft_examples: int = option(21000, help="SFT demonstrations for pi_0.", ge=1)
    sft_steps: int = option(2000, help="SFT optimiser steps for pi_0 (batch 64).", ge=1)
    sft_learning_rate: float = option(3e-3, help="SFT peak learning rate.", gt=0)
    rm_samples: int = option(4, help="pi_0 samples per RM-build prompt, at the loop's T=0.8, top_p=0.95.", ge=2)
    rm_backbone: str = option(
        "policy",
        help="r_0's initialisation: pi_0's backbone (policy), or a tiny Llama of its own size pretrained with the LM "
        "objective on right answers (pretrained); either way it shares pi_0's tokenizer.",
        choices=["policy", "pretrained"],
    )
    rm_hidden_size: int = option(128, help="Width of r_0's pretrained backbone, a multiple of its 4 heads.", ge=4)
    rm_layers: int = option(4, help="Depth of r_0's pretrained backbone.", ge=1)
    rm_pretrain_examples: int = option(21000, help="Right-answer demonstrations r_0's backbone learns from.", ge=1)
    rm_pretrain_steps: int = option(2000, help="LM steps of r_0's backbone (batch 64).", ge=1)
    rm_pretrain_learning_rate: float = option(2e-3, help="Peak learning rate of r_0's backbone pretraining.", gt=0)
    rm_epochs: float = option(4.0, help="Bradley-Terry epochs for r_0 (over its training prompts).", gt=0)
    rm_learning_rate: float = option(1e-3, help="r_0 learning rate.", gt=0)
    eval_samples: int = option(4, help="Samples per evaluation prompt when measuring a policy.", ge=1)
    hidden_size: int = option(64, help="pi_0's width, a multiple of its 4 attention heads.", ge=4)
    layers: int = option(2, help="pi_0's depth.", ge=1)
    max_new_tokens: int = option(24, help="Longest response the world's tasks need.", ge=1)
