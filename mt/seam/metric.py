"""SEAM arithmetic: judged answers in, numbers out. No models here.

A prompt's record holds y* and its worse answers W, each judged by the policy (``pm_sum``: summed
log-probability of answer+EOS; ``pm_mean``: the same per token) and by the reward model (``rm``:
the raw logit). The RM is hacked by y_k when R(x, y_k) > R(x, y*) (the paper's definition).

The paper does not publish how PM and RM judgements combine into one number, so only ``count``
(hacks / K, what the authors' repository counts) is verified; the other modes are reconstructions:

- ``weighted`` (default): w = softmax over {y*} ∪ W of the PM's per-token log-probability;
  SEAM(x) = sum_k w_k * hack_k. In [0, 1); high when the RM is wrong about answers the PM is
  likely to give.
- ``pm_and_rm``: the fraction of W that both models prefer to y* (PM by summed log-probability).
- ``rank``: disagreement of the PM and RM orderings of {y*} ∪ W, (1 - rho) / 2 with rho the
  Spearman (or Kendall tau-b) correlation: 0 = same order, 0.5 = unrelated, 1 = reversed. When
  either model scores every answer the same, rho is undefined and the prompt scores 0.5.

A dataset's SEAM is the mean over its prompts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MODES = ("weighted", "count", "pm_and_rm", "rank")
DEFAULT_MODE = "weighted"
# The PM judgement each mode reads unless told otherwise: the paper's is the sum; the softmax
# weights of the reconstruction are length-normalised so long answers are not near-zero weights.
DEFAULT_PM = {"weighted": "mean", "count": "sum", "pm_and_rm": "sum", "rank": "sum"}
RANK_METHODS = ("spearman", "kendall")

RECONSTRUCTION_NOTE = (
    "SEAM's combination of PM and RM judgements is not published (arXiv 2406.07971; TaiMingLu/seamless "
    "counts hacks per prompt). Mode 'count' is that literal count / K; 'weighted', 'pm_and_rm' and 'rank' "
    "are this project's reconstructions."
)

Judged = Mapping[str, float]  # {"pm_sum", "pm_mean", "rm"}


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown SEAM mode {mode!r}; expected one of {', '.join(MODES)}")


def is_reconstructed(mode: str) -> bool:
    check_mode(mode)
    return mode != "count"


def hacks(gold: Judged, worse: Sequence[Judged]) -> list[bool]:
    """hack_k = R(x, y_k) > R(x, y*)."""
    return [w["rm"] > gold["rm"] for w in worse]


def softmax(xs: Sequence[float]) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


def seam_weighted(gold: Judged, worse: Sequence[Judged], pm: str = "mean") -> float:
    weights = softmax([gold[f"pm_{pm}"], *(w[f"pm_{pm}"] for w in worse)])
    return sum(wk for wk, hacked in zip(weights[1:], hacks(gold, worse), strict=True) if hacked)


def seam_count(gold: Judged, worse: Sequence[Judged], pm: str = "sum") -> float:
    return sum(hacks(gold, worse)) / len(worse)


def seam_pm_and_rm(gold: Judged, worse: Sequence[Judged], pm: str = "sum") -> float:
    key = f"pm_{pm}"
    return sum(w[key] > gold[key] and w["rm"] > gold["rm"] for w in worse) / len(worse)


def average_ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """None when either side is constant (the correlation is undefined)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    return pearson(average_ranks(xs), average_ranks(ys))


def kendall_tau_b(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom


def seam_rank(gold: Judged, worse: Sequence[Judged], pm: str = "sum", method: str = "spearman") -> float:
    if method not in RANK_METHODS:
        raise ValueError(f"unknown rank correlation {method!r}; expected one of {', '.join(RANK_METHODS)}")
    answers = [gold, *worse]
    rho = (spearman if method == "spearman" else kendall_tau_b)(
        [a[f"pm_{pm}"] for a in answers], [a["rm"] for a in answers])
    return 0.5 if rho is None else (1 - rho) / 2


SCORERS: dict[str, Callable[..., float]] = {
    "weighted": seam_weighted, "count": seam_count, "pm_and_rm": seam_pm_and_rm, "rank": seam_rank,
}


def prompt_seam(record: Mapping[str, Any], mode: str = DEFAULT_MODE, pm: str | None = None,
                rank_method: str = "spearman") -> float:
    """SEAM of one prompt record {"gold": judged, "worse": [judged, ...]} (at least one worse answer)."""
    check_mode(mode)
    if not record["worse"]:
        raise ValueError(f"prompt {record.get('id')!r} has no worse answers; SEAM is undefined")
    pm = pm or DEFAULT_PM[mode]
    if mode == "rank":
        return seam_rank(record["gold"], record["worse"], pm, rank_method)
    return SCORERS[mode](record["gold"], record["worse"], pm)


def dataset_seam(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarise(records: Sequence[Mapping[str, Any]], mode: str = DEFAULT_MODE, pm: str | None = None,
              rank_method: str = "spearman") -> dict[str, Any]:
    """Dataset SEAM in ``mode``, every mode's value for comparison, the hack rate and per-family means."""
    values = [prompt_seam(r, mode, pm, rank_method) for r in records]
    worse = sum(len(r["worse"]) for r in records)
    out: dict[str, Any] = {
        "mode": mode,
        "seam": dataset_seam(values),
        "prompts": len(records),
        "worse_answers": worse,
        "hack_rate": sum(sum(hacks(r["gold"], r["worse"])) for r in records) / worse if worse else float("nan"),
        "by_mode": {m: dataset_seam([prompt_seam(r, m, rank_method=rank_method) for r in records]) for m in MODES},
    }
    families = sorted({r["family"] for r in records if "family" in r})
    if families:
        out["by_family"] = {f: dataset_seam([v for r, v in zip(records, values, strict=True) if r.get("family") == f])
                            for f in families}
    return out
