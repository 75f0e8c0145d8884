"""How sure a table is: intervals for cells, paired comparisons of methods, and how many seeds to run.

A table cell is (method, seed). Cells of one seed share pi_0, the prompt splits and the evaluation prompts,
so methods are compared seed by seed, and within a seed prompt by prompt. A cell's measurement is a
per-prompt vector (a scalar cell is a length-1 vector) whose mean is the number the table shows.

Pure functions of numbers; numpy is the only dependency (the t quantile is computed here, so scipy is
needed by the tests only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EXACT_MAX_SEEDS = 20  # sign-flip tests enumerate all 2^n patterns up to here, then sample
TIE_RTOL = 1e-12  # times sum |d| (the scale of rounding in a signed sum): closer statistics are ties


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n_seeds: int


@dataclass(frozen=True)
class PairedResult:
    """A minus B over the seeds both have; ``sd`` (of the per-seed differences) feeds the power plan."""

    n: int
    mean_diff: float
    low: float
    high: float
    p_value: float
    sd: float  # nan with one seed
    exact: bool  # p from all 2^n sign patterns (else Monte-Carlo)
    dropped: tuple[int, ...]  # seeds only one side has

    @property
    def interval(self) -> Interval:
        return Interval(self.mean_diff, self.low, self.high, self.n)


def _vectors(per_seed: Sequence[Sequence[float]]) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=float).reshape(-1) for v in per_seed]
    if not arrays:
        raise ValueError("no seeds to summarise")
    for i, a in enumerate(arrays):
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"seed #{i} needs at least one value, all finite; got {a.tolist()[:5]}")
    return arrays


def bootstrap_distribution(per_seed: Sequence[Sequence[float]], rounds: int = 2000, seed: int = 0) -> np.ndarray:
    """Two-stage bootstrap of the mean over seeds of each seed's prompt mean, one value per round.

    Seeds are resampled with replacement, then each drawn seed's prompts within that seed only: pooling
    prompts across seeds would hide the seed-to-seed spread, which dominates. Draw order (fixed, so a
    seed reproduces the stream): the (rounds, seeds) seed picks, then per seed in input order one
    (times drawn, prompts) block of prompt indices, assigned to that seed's picks in row-major order.
    """
    return _resample(_vectors(per_seed), rounds, seed)


def _resample(arrays: list[np.ndarray], rounds: int, seed: int) -> np.ndarray:
    if rounds < 1:
        raise ValueError(f"rounds must be positive, got {rounds}")
    rng = np.random.default_rng(seed)
    k = len(arrays)
    picks = rng.integers(0, k, size=(rounds, k))
    means = np.empty((rounds, k))
    for s, values in enumerate(arrays):  # a loop over seeds only; rounds and prompts are vectorised
        drawn = picks == s
        idx = rng.integers(0, values.size, size=(int(drawn.sum()), values.size))
        means[drawn] = values[idx].mean(axis=1)
    return means.mean(axis=1)


def hierarchical_bootstrap(per_seed: Sequence[Sequence[float]], rounds: int = 2000, seed: int = 0,
                           level: float = 0.95) -> Interval:
    """Mean over seeds of the per-seed prompt means, with a percentile interval from the two-stage bootstrap.

    One seed: only the prompt stage varies. Length-1 seeds (scalar cells): only the seed stage varies.
    """
    _check_level(level)
    arrays = _vectors(per_seed)
    point = float(np.mean([v.mean() for v in arrays]))
    low, high = np.quantile(_resample(arrays, rounds, seed), [(1 - level) / 2, (1 + level) / 2])
    return Interval(point, float(low), float(high), len(arrays))


def per_seed_differences(a_per_seed: Mapping[int, Sequence[float]], b_per_seed: Mapping[int, Sequence[float]]
                         ) -> tuple[dict[int, np.ndarray], tuple[int, ...]]:
    """Per-prompt A - B on the seeds both have, and the seeds dropped for having one side only.

    Prompts of one seed are the same for both methods, so the vectors subtract element-wise; a length-1
    (scalar) side broadcasts, any other length mismatch is an error.
    """
    shared = sorted(set(a_per_seed) & set(b_per_seed))
    dropped = tuple(sorted(set(a_per_seed) ^ set(b_per_seed)))
    diffs = {}
    for s in shared:
        a, b = (np.asarray(v, dtype=float).reshape(-1) for v in (a_per_seed[s], b_per_seed[s]))
        if a.size != b.size and 1 not in (a.size, b.size):
            raise ValueError(f"seed {s}: {a.size} prompts against {b.size}; they must be the same prompts")
        diffs[s] = a - b
    return diffs, dropped


def sign_flip_p(diffs: Sequence[float], permutations: int = 100_000, seed: int = 0) -> tuple[float, bool]:
    """Two-sided p of a paired sign-flip permutation test on per-seed differences, and whether it is exact.

    The statistic is |sum of differences|; the observed sign pattern is one of those counted, so p is at
    least 2/2^n with n nonzero differences. Zero differences stay in (flipping them changes nothing) and
    patterns whose statistic equals the observed one within ``TIE_RTOL`` count as at least as extreme.
    Above ``EXACT_MAX_SEEDS`` seeds, random sign patterns with (1 + hits) / (1 + permutations).
    """
    d = np.asarray(diffs, dtype=float).reshape(-1)
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"need at least one finite difference, got {d.tolist()}")
    observed = abs(d.sum())
    threshold = observed - TIE_RTOL * np.abs(d).sum()
    if d.size <= EXACT_MAX_SEEDS:
        sums = np.zeros(1)
        for x in d:  # all 2^n signed sums, doubling per difference
            sums = np.concatenate([sums + x, sums - x])
        return float(np.mean(np.abs(sums) >= threshold)), True
    rng = np.random.default_rng(seed)
    signs = rng.integers(0, 2, size=(permutations, d.size)) * 2 - 1
    hits = int(np.sum(np.abs(signs @ d) >= threshold))
    return (1 + hits) / (1 + permutations), False


def paired_difference(a_per_seed: Mapping[int, Sequence[float]], b_per_seed: Mapping[int, Sequence[float]],
                      rounds: int = 2000, seed: int = 0, level: float = 0.95,
                      permutations: int = 100_000) -> PairedResult:
    """A minus B, paired by seed and within a seed by prompt.

    The interval is the two-stage bootstrap of the per-prompt differences (resampling a prompt moves A and
    B together); the p-value is the sign-flip test over seeds on the per-seed mean differences.
    """
    diffs, dropped = per_seed_differences(a_per_seed, b_per_seed)
    if not diffs:
        raise ValueError(f"no seed in common (A has {sorted(a_per_seed)}, B has {sorted(b_per_seed)})")
    vectors = list(diffs.values())
    interval = hierarchical_bootstrap(vectors, rounds, seed, level)
    means = np.array([v.mean() for v in vectors])
    p, exact = sign_flip_p(means, permutations, seed)
    sd = float(np.std(means, ddof=1)) if means.size > 1 else math.nan
    return PairedResult(len(vectors), interval.mean, interval.low, interval.high, p, sd, exact, dropped)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _t_central_mass(theta: float, df: int) -> float:
    """P(|T| < sqrt(df) tan(theta)) for Student's t with integer df (Abramowitz & Stegun 26.7.3-4)."""
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = total = math.cos(theta)
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * total)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile for integer df (seeds minus one), by bisection on the closed-form CDF.

    Written here so the statistics need numpy only; agrees with ``scipy.stats.t.ppf`` to a relative 1e-11.
    """
    if not 0 < p < 1 or df < 1 or int(df) != df:
        raise ValueError(f"need 0 < p < 1 and a positive integer df, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    target = abs(2 * p - 1)
    lo, hi = 0.0, math.pi / 2
    while True:
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        if _t_central_mass(mid, int(df)) < target:
            lo = mid
        else:
            hi = mid
    t = math.sqrt(df) * math.tan((lo + hi) / 2)
    return t if p >= 0.5 else -t


def seeds_for_halfwidth(sd: float, halfwidth: float, level: float = 0.95) -> int:
    """Fewest seeds (at least 2) whose t interval of the mean per-seed difference is within +-halfwidth."""
    _check_level(level)
    if sd < 0 or halfwidth <= 0:
        raise ValueError(f"need sd >= 0 and halfwidth > 0, got sd={sd}, halfwidth={halfwidth}")
    q = (1 + level) / 2
    # t > z, so the normal-theory count is a lower bound; a few steps up reach the t answer.
    n = max(2, math.ceil((NormalDist().inv_cdf(q) * sd / halfwidth) ** 2))
    while t_quantile(q, n - 1) * sd / math.sqrt(n) > halfwidth:
        n += 1
    return n


def detectable_difference(sd: float, n: int, level: float = 0.95, power: float = 0.8) -> float:
    """Smallest true per-seed difference a two-sided paired test at n seeds detects with this power.

    The t approximation (t_{1-a/2} + t_power) * sd / sqrt(n), df = n - 1. Infinite when the sign-flip
    test cannot reach significance at all: its smallest p, 2/2^n, exceeds 1 - level (n <= 5 at 95 %).
    """
    _check_level(level)
    if not 0 < power < 1 or n < 2 or sd < 0:
        raise ValueError(f"need 0 < power < 1, n >= 2 and sd >= 0, got power={power}, n={n}, sd={sd}")
    if 2 / 2**n > 1 - level:
        return math.inf
    return (t_quantile((1 + level) / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def stop_rate(stopped: Sequence[bool], level: float = 0.95) -> Interval:
    """How often the stop rule fired, with a Wilson interval (sane at 0 or n of n, unlike the Wald one)."""
    _check_level(level)
    n = len(stopped)
    if n == 0:
        raise ValueError("no cells to count")
    rate = sum(bool(s) for s in stopped) / n
    z = NormalDist().inv_cdf((1 + level) / 2)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return Interval(rate, max(0.0, centre - half), min(1.0, centre + half), n)


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], x.size]  # one past each tie group
    group = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends + 1) / 2)[group]
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Rank correlation with average ranks for ties; nan when either side is constant.

    Numpy twin of ``mt.seam.metric.spearman``, which is pure Python and whose package import loads torch.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x) & np.isfinite(y)):
        raise ValueError(f"need two finite vectors of one length >= 2, got shapes {x.shape} and {y.shape}")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom else math.nan


def fmt_interval(interval: Interval, scale: float = 1.0, digits: int = 1) -> str:
    """'38.2 [31.0, 45.1]': the mean, then the interval, scaled (100 for percentages)."""
    m, lo, hi = (v * scale for v in (interval.mean, interval.low, interval.high))
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
