"""Arena-Hard scores from judged games: battles, Bradley-Terry, bootstrap CIs and style control.

Facts follow lmarena/arena-hard-auto: the v0.1 scorer at commit 0489bf3 (``show_result.py``,
``utils_math.py``) and the v2.0 scorer at HEAD 196f6b8 (``show_result.py``, ``utils/math_utils.py``).
A record is one question: ``{uid, category, games: [game 1, game 2]}``, each game ``{score: label}``
or None; game 1 has the baseline as assistant A, game 2 the model.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# Verdict -> the baseline's outcome for a game whose assistant A is the baseline, and its weight (strong x3).
V01_LABELS = {"A>>B": (1.0, True), "A>B": (1.0, False), "A=B": (0.5, False), "B>A": (0.0, False),
              "B>>A": (0.0, True)}
# v2.0's label_to_score (show_result.py at 196f6b8): score of assistant A, strong labels repeated.
V20_LABELS = {"A>B": (1.0, False), "A>>B": (1.0, True), "A=B": (0.5, False), "A<<B": (0.0, True),
              "A<B": (0.0, False), "B>A": (0.0, False), "B>>A": (0.0, True), "B=A": (0.5, False),
              "B<<A": (1.0, True), "B<A": (1.0, False)}
STYLE_CONTROL = {"none": (), "length": (0,), "markdown": (1, 2, 3), "both": (0, 1, 2, 3)}
STYLE_FEATURES = ("length", "header", "list", "bold")

# (model metadata, baseline metadata) of one battle's answers, looked up by (uid, category).
MetadataLookup = Callable[[str, str], tuple[Mapping[str, Any], Mapping[str, Any]]]


# ---------------------------------------------------------------------------------------------- battles


def battles_v01(records: Sequence[dict[str, Any]], weight: int = 3) -> tuple[list[dict[str, Any]], Counter]:
    """0489bf3's get_battles_from_row: each game on its own; a game without a known label is dropped.

    Outcomes are the model's (1 win, 0.5 tie, 0 loss); game 1 has the baseline as A, game 2 the model.
    """
    battles, counts = [], Counter()
    for row in records:
        for g, game in enumerate(row["games"][:2]):
            label = (game or {}).get("score")
            if label not in V01_LABELS:
                counts["dropped_games"] += 1
                continue
            a_score, strong = V01_LABELS[label]
            outcome = 1.0 - a_score if g == 0 else a_score
            battles += [{"uid": row["uid"], "category": row["category"], "outcome": outcome}] * (weight if strong else 1)
    return battles, counts


def battles_v20(records: Sequence[dict[str, Any]], weight: int = 3) -> tuple[list[dict[str, Any]], Counter]:
    """HEAD's load_judgments: a question with a null game is dropped whole; game 2's battles come first."""
    battles, counts = [], Counter()
    for row in records:
        games = list(row["games"][:2]) + [None] * (2 - len(row["games"][:2]))
        labels = [(g or {}).get("score") for g in games]
        if any(label not in V20_LABELS for label in labels):
            counts["dropped_questions"] += 1
            continue
        (s1, strong1), (s2, strong2) = V20_LABELS[labels[0]], V20_LABELS[labels[1]]
        outcomes = [s2] * (weight if strong2 else 1) + [1.0 - s1] * (weight if strong1 else 1)
        battles += [{"uid": row["uid"], "category": row["category"], "outcome": o} for o in outcomes]
    return battles, counts


# ---------------------------------------------------------------------------------------------- scores


def bt_elo(outcomes: Sequence[float]) -> float:
    """The model's Elo against the baseline anchored at 1000: 0489bf3's compute_mle_elo for one pair.

    Each battle is written twice (a tie once as the baseline's win, once as its loss), columns
    +-log(10) for baseline/model, an unpenalised logistic regression without intercept, then
    400 * coef + 1000 shifted so the baseline sits at 1000.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    o = np.asarray(outcomes, dtype=float)
    n = len(o)
    x = np.zeros((2 * n, 2))
    x[:, 0], x[:, 1] = math.log(10), -math.log(10)  # column 0 the baseline (model_a), 1 the model (model_b)
    y = np.concatenate([(o <= 0.5), (o == 0.0)]).astype(float)  # baseline wins; a tie's first copy too
    if y.min() == y.max():  # one side won every battle: the MLE is at infinity
        return math.inf if y[0] == 0 else -math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        coef = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8).fit(x, y).coef_[0]
    elo = 400 * coef + 1000
    return float(elo[1] - elo[0] + 1000)


def elo_to_score(elo: float, baseline: float = 1000.0) -> float:
    """100 * P(model beats baseline) on the Elo scale (400, base 10)."""
    if math.isinf(elo):
        return 100.0 if elo > 0 else 0.0
    with np.errstate(over="ignore"):  # a clipped sweep's Elo (+-1e9) overflows to a score of 0, as it should
        return float(100.0 / (1.0 + np.power(10.0, (baseline - elo) / 400)))


def bootstrap_indices(n: int, rounds: int, seed: int) -> np.ndarray:
    """Rows drawn with replacement per round, as pandas' sample(frac=1, replace=True) under np.random.seed."""
    rng = np.random.RandomState(seed)
    return np.stack([rng.randint(0, n, size=n) for _ in range(rounds)])


def score_v01(outcomes: Sequence[float], rounds: int = 100, seed: int = 42) -> dict[str, Any]:
    """v0.1: the BT score, and the 2.5/97.5 percentiles of the bootstrap Elos turned into scores."""
    o = np.asarray(outcomes, dtype=float)
    if len(o) == 0:
        return {"score": None, "ci_low": None, "ci_high": None, "battles": 0}
    elo = bt_elo(o)
    boots = np.array([bt_elo(o[idx]) for idx in bootstrap_indices(len(o), rounds, seed)])
    boots = np.clip(boots, -1e9, 1e9)  # a round one side swept: its Elo is at infinity, its score 0 or 100
    low, high = np.percentile(boots, 2.5), np.percentile(boots, 97.5)
    return {"score": elo_to_score(elo), "ci_low": elo_to_score(low), "ci_high": elo_to_score(high),
            "elo": elo if math.isfinite(elo) else None,  # a sweep's Elo is infinite: not valid in strict JSON
            "ci_level": 0.95, "method": "bradley-terry (0489bf3)", "battles": len(o),
            "rounds": rounds, "seed": seed}


def score_v20(outcomes: Sequence[float], rounds: int = 100, seed: int = 42) -> dict[str, Any]:
    """v2.0 plain: the mean of the bootstrap means, with their 5/95 quantiles."""
    o = np.asarray(outcomes, dtype=float)
    if len(o) == 0:
        return {"score": None, "ci_low": None, "ci_high": None, "battles": 0}
    means = o[bootstrap_indices(len(o), rounds, seed)].mean(axis=1)
    return {"score": 100 * float(means.mean()), "ci_low": 100 * float(np.quantile(means, 0.05)),
            "ci_high": 100 * float(np.quantile(means, 0.95)), "ci_level": 0.90,
            "method": "mean of bootstrap means (196f6b8)", "battles": len(o), "rounds": rounds, "seed": seed}


# ---------------------------------------------------------------------------------------------- style control


def style_vector(metadata: Mapping[str, Any]) -> list[float]:
    """token_len and the summed header, list and bold counts of a model_answer's metadata."""
    counts = [metadata.get(k, 0) for k in ("header_count", "list_count", "bold_count")]
    return [float(metadata["token_len"])] + [float(sum(c.values()) if isinstance(c, dict) else c) for c in counts]


def style_features(model_meta: Sequence[Mapping], baseline_meta: Sequence[Mapping]) -> np.ndarray:
    """Per battle: length (m-b)/(m+b), markdown densities count/(len+1) as (m-b)/(m+b+1), z-scored (ddof 1).

    A constant column (no battle differs in it) is set to zero where the official code would stop on NaN. Constant
    by its values: equal values not exact in binary can leave a float std of 1e-17, which would z-score noise.
    """
    m = np.array([style_vector(x) for x in model_meta])
    b = np.array([style_vector(x) for x in baseline_meta])
    out = np.zeros_like(m)
    total = m[:, 0] + b[:, 0]
    out[:, 0] = np.divide(m[:, 0] - b[:, 0], total, out=np.zeros(len(m)), where=total != 0)
    dm, db = m[:, 1:] / (m[:, :1] + 1), b[:, 1:] / (b[:, :1] + 1)
    out[:, 1:] = (dm - db) / (dm + db + 1)
    std = out.std(axis=0, ddof=1) if len(out) > 1 else np.zeros(out.shape[1])
    safe = np.where(std > 0, std, 1.0)
    varies = out.max(axis=0) > out.min(axis=0)
    return np.where(varies, (out - out.mean(axis=0)) / safe, 0.0)


def fit_bt_features(features, outcomes):
    """HEAD's fit_pairwise_model: BT coefficients by L-BFGS on summed BCE with soft (tie = 0.5) outcomes."""
    import torch

    coefs = torch.nn.Parameter(torch.full((features.shape[1],), 0.5))
    optimizer = torch.optim.LBFGS([coefs], lr=0.1, max_iter=50, tolerance_grad=1e-9, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(features @ coefs, outcomes, reduction="sum")
        loss.backward()
        return loss

    optimizer.step(closure)
    return coefs.detach()


def score_style_control(outcomes: Sequence[float], features: np.ndarray, control: str = "both",
                        rounds: int = 100, seed: int = 42) -> dict[str, Any]:
    """v2.0 style control: BT on [model +1, baseline -1, style features] per bootstrap; median and 5/95."""
    import torch

    if len(outcomes) == 0:
        return {"score": None, "ci_low": None, "ci_high": None, "battles": 0}
    columns = list(STYLE_CONTROL[control])
    x = torch.cat([torch.tensor([[1.0, -1.0]]).expand(len(outcomes), 2),
                   torch.tensor(features[:, columns], dtype=torch.float32)], dim=1)
    y = torch.tensor(np.asarray(outcomes, dtype=float), dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fits this small run several times faster on one thread than on contended ones
    try:
        coefs = torch.stack([fit_bt_features(x[idx], y[idx]) for idx in bootstrap_indices(len(y), rounds, seed)])
    finally:
        torch.set_num_threads(threads)
    probs = torch.sigmoid(coefs[:, 0] - coefs[:, 1]).numpy()
    return {"score": 100 * float(np.quantile(probs, 0.5)), "ci_low": 100 * float(np.quantile(probs, 0.05)),
            "ci_high": 100 * float(np.quantile(probs, 0.95)), "ci_level": 0.90,
            "method": f"style-controlled bradley-terry, median of bootstraps (196f6b8), control={control}",
            "style_coefs": {STYLE_FEATURES[c]: float(v) for c, v in
                            zip(columns, torch.quantile(coefs[:, 2:], 0.5, dim=0).tolist(), strict=True)},
            "battles": len(y), "rounds": rounds, "seed": seed}


# ---------------------------------------------------------------------------------------------- per category


def score_records(records: Sequence[dict[str, Any]], version: str, *, weight: int = 3, rounds: int = 100,
                  seed: int = 42, style_control: str = "none", metadata: MetadataLookup | None = None
                  ) -> tuple[dict[str, dict[str, Any]], Counter]:
    """Scores per category (v2.0) or over all questions (v0.1, keyed ``arena-hard-v0.1``), and what was dropped.

    With style control, ``metadata(uid, category)`` gives the two answers' token_len and markdown counts;
    ``style_controlled`` then holds the style-controlled score beside the plain one.
    """
    if style_control != "none" and metadata is None:
        raise ValueError("style control needs the answers' metadata")
    battles, drops = (battles_v01 if version == "v0.1" else battles_v20)(records, weight)
    categories = sorted({b["category"] for b in battles}) if version == "v2.0" else [None]
    out = {}
    for cat in categories:
        rows = [b for b in battles if cat is None or b["category"] == cat]
        outcomes = [b["outcome"] for b in rows]
        scores = (score_v01 if version == "v0.1" else score_v20)(outcomes, rounds, seed)
        if style_control != "none":
            pairs = [metadata(b["uid"], b["category"]) for b in rows]
            features = style_features([p[0] for p in pairs], [p[1] for p in pairs])
            scores["style_controlled"] = score_style_control(outcomes, features, style_control, rounds, seed)
        out[cat or f"arena-hard-{version}"] = scores
    return out, drops


def parse_report(records: Sequence[dict[str, Any]], version: str, drops: Counter, extra: Counter) -> dict[str, Any]:
    """How many verdicts parsed, and what each version's rule dropped because of the rest."""
    statuses = Counter(g.get("status", "ok" if g.get("score") else "missing") if g else "null"
                       for r in records for g in r["games"])
    null = sum(1 for r in records for g in r["games"] if not g or g.get("score") is None)
    unknown = sum(1 for r in records for g in r["games"]
                  if g and g.get("score") is not None and g["score"] not in (V01_LABELS if version == "v0.1"
                                                                              else V20_LABELS))
    return {"rules": version, "games": sum(len(r["games"]) for r in records), "unparseable": null + unknown,
            "missing_label": statuses["missing"] + statuses["null"], "conflicting_labels": statuses["conflict"],
            "unknown_label": unknown + statuses["unknown"], "followups": extra.get("followups", 0),
            "dropped_games": drops.get("dropped_games", 0), "dropped_questions": drops.get("dropped_questions", 0)}
