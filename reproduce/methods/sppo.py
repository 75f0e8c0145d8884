"""SPPO: Self-Play Preference Optimization (Wu et al., 2024; uclaml/SPPO).

The policy's log-ratio against the iteration's starting policy is regressed onto
eta * (P(y beats pi_t) - 1/2) with a squared loss, eta = 1/beta. P is estimated as released:
K samples, a preference model scores each one, P_ij = sigmoid(S_i - S_j), p_win(y_i) = mean_j P_ij
over all K samples (the self term is 1/2; ``include_self=false`` averages over the others, as the
paper writes it). chosen = argmax S, rejected = argmin S.

The loss is TRL's own ``sppo_hard`` with per-example targets folded into the precomputed reference
log-probabilities: shifting log pi_ref(y_w) by t_w - 1/(2 beta) turns (a_w - 1/(2 beta))^2 into
(a_w - t_w)^2, and likewise for the loser. Nothing of TRL's training loop is copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mt.method import Method

from .registry import MethodSpec, register

VARIANTS = ("sppo", "sppo_single", "sppo_hard")


@dataclass
class SPPOOptions:
    beta: float = field(default=0.001, metadata={"help": "1/eta; the paper's eta is 1000.", "gt": 0})
    variant: str = field(default="sppo", metadata={
        "help": "sppo: per-side targets from p_win; sppo_single: P(y_w beats y_l) for both sides, opposite signs; "
                "sppo_hard: targets +-1/(2 beta) (TRL's hard-label form).", "choices": VARIANTS})
    include_self: bool = field(default=True, metadata={
        "help": "Average P over all K samples including the sample itself (released code) or only the others."})


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def win_probabilities(scores: list[float], include_self: bool = True) -> list[float]:
    """p_win(y_i) = mean_j sigmoid(S_i - S_j), a BT preference model's own estimate of P(y_i beats pi_t)."""
    k = len(scores)
    out = []
    for i in range(k):
        others = [sigmoid(scores[i] - scores[j]) for j in range(k) if include_self or j != i]
        out.append(sum(others) / len(others))
    return out


def targets(p_chosen: float, p_rejected: float, p_pair: float, beta: float, variant: str) -> tuple[float, float]:
    """Regression targets (t_w, t_l) for the log-ratios of chosen and rejected."""
    if variant == "sppo":
        return (p_chosen - 0.5) / beta, (p_rejected - 0.5) / beta
    if variant == "sppo_single":
        return (p_pair - 0.5) / beta, -(p_pair - 0.5) / beta
    if variant == "sppo_hard":
        return 0.5 / beta, -0.5 / beta
    raise ValueError(f"unknown SPPO variant {variant!r}; expected one of {VARIANTS}")


def sppo_loss(a_w: float, a_l: float, t_w: float, t_l: float) -> float:
    """The released loss, 1/2 [(a_w - t_w)^2 + (a_l - t_l)^2], for checking the trainer by hand."""
    return 0.5 * ((a_w - t_w) ** 2 + (a_l - t_l) ** 2)


def sppo_trainer_cls(beta: float):
    """A DPOTrainer whose precomputed reference log-probs carry the SPPO targets."""
    from trl import DPOTrainer

    class SPPOTrainer(DPOTrainer):
        def _precompute_ref_logps(self, dataset, name, batch_size):
            dataset = super()._precompute_ref_logps(dataset, name, batch_size)
            shift = 0.5 / beta

            def fold(batch):
                return {
                    "ref_chosen_logps": [r + t - shift for r, t in
                                         zip(batch["ref_chosen_logps"], batch["target_chosen"], strict=True)],
                    "ref_rejected_logps": [r + t + shift for r, t in
                                           zip(batch["ref_rejected_logps"], batch["target_rejected"], strict=True)],
                }

            return dataset.map(fold, batched=True, desc="Folding SPPO targets into reference log-probs")

    return SPPOTrainer


@dataclass(frozen=True)
class SPPOPairs:
    """chosen = argmax S, rejected = argmin S, each with its regression target from the K samples' p_win."""

    options: SPPOOptions

    def __call__(self, run, t, scored):
        o = self.options
        pairs, skipped = [], 0
        for row in scored:
            scores = [r["reward"] for r in row["responses"]]
            if max(scores) == min(scores):
                skipped += 1
                continue
            w, lo = scores.index(max(scores)), scores.index(min(scores))
            p = win_probabilities(scores, o.include_self)
            t_w, t_l = targets(p[w], p[lo], sigmoid(scores[w] - scores[lo]), o.beta, o.variant)
            pairs.append({"id": row["id"], "prompt": row["prompt"], "chosen": row["responses"][w]["text"],
                          "rejected": row["responses"][lo]["text"], "p_chosen": p[w], "p_rejected": p[lo],
                          "target_chosen": t_w, "target_rejected": t_l})
        mean_pw = sum(x["p_chosen"] for x in pairs) / max(1, len(pairs))
        return pairs, {"pairs_built": len(pairs), "pairs_skipped_tie": skipped, "sppo_variant": o.variant,
                       "sppo_beta": o.beta, "p_win_chosen_mean": mean_pw}


@dataclass(frozen=True)
class SPPOUpdate:
    """The E-step's DPO update with SPPO's squared loss (TRL's sppo_hard with the targets folded in)."""

    options: SPPOOptions

    def __call__(self, run, t, models, pairs, ctx):
        o = self.options
        # The released loss carries a factor 1/2 that TRL's hard form does not; sppo_hard is TRL's as is.
        overrides = {"loss_type": ["sppo_hard"], "beta": o.beta, "precompute_ref_log_probs": True,
                     "loss_weights": [1.0 if o.variant == "sppo_hard" else 0.5]}
        return run.engine.train_dpo(models.policy, pairs, ctx.dir / "candidates", ctx.seed,
                                    trainer_cls=sppo_trainer_cls(o.beta),
                                    extra_columns=("target_chosen", "target_rejected"), dpo_overrides=overrides)


def build(options: SPPOOptions) -> Method:
    return Method(make_pairs=SPPOPairs(options), policy_update=SPPOUpdate(options))


register(MethodSpec(
    "sppo",
    "Self-play preference optimisation: squared loss of the log-ratio against eta (P_win - 1/2); 3 iterations, "
    "fixed preference model.",
    "Wu et al., Self-Play Preference Optimization for Language Model Alignment, 2024 (uclaml/SPPO)",
    build,
    ("select.enabled=false", "mstep.enabled=false", "run.iterations=3", "data.pm_parts=[1, 2, 3]"),
    SPPOOptions,
    notes="On the gold world no PairRM exists: the preference model is the fixed r_0 with P_ij = "
          "sigmoid(r_i - r_j), a Bradley-Terry RM's own preference probability (a substitution).",
))
