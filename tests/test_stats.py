"""Statistics layer: hand-computed cases, plain-loop twins on the same random stream, and scipy on the same inputs."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from reproduce import stats as st

sp = pytest.importorskip("scipy.stats")


# ---------------------------------------------------------------- sign-flip test
@pytest.mark.parametrize(("diffs", "p"), [
    ([1.0, 2.0, 3.0], 2 / 8),  # all positive: only the observed pattern and its mirror
    ([0.5] * 5, 2 / 32),
    ([1.0, 2.0, 0.0], 4 / 8),  # the zero stays: each of the 4 patterns of (1, 2) appears twice
    ([3.0, 1.0, 1.0, 1.0], 2 / 16),  # flipping any sign lowers |sum| below 6
    ([1.0, 1.0, 1.0, -1.0], 10 / 16),  # |sum| = 2 is tied by 8 patterns: ties count as extreme
    ([1.0, -1.0], 1.0),  # observed sum 0: every pattern is as extreme
    ([0.0, 0.0, 0.0], 1.0),
])
def test_sign_flip_p_hand_cases(diffs, p):
    assert st.sign_flip_p(diffs) == (pytest.approx(p, abs=1e-15), True)


def _scipy_sign_flip(d, **kwargs):
    return sp.permutation_test((np.asarray(d),), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
                               permutation_type="samples", alternative="two-sided", **kwargs).pvalue


@pytest.mark.parametrize("d", [np.random.default_rng(4).normal(0.4, 1.0, 9), [2.0, -1.0, 3.0, 0.0, 1.0, -2.0, 1.0],
                               np.random.default_rng(5).normal(0.2, 1.0, 13)])
def test_sign_flip_p_equals_scipy_exact_permutation_test(d):
    assert st.sign_flip_p(d)[0] == pytest.approx(_scipy_sign_flip(d, n_resamples=np.inf), abs=1e-12)


def test_sign_flip_p_counts_the_observed_pattern_when_its_sum_is_near_zero():
    """Observed |sum| 0.019 against sum |d| 11.8: rounding, which scales with the latter, must not drop it.

    (scipy's tolerance scales with |observed| and misses the observed pattern and its mirror on this input.)
    """
    d = np.random.default_rng(5).normal(0.0, 1.0, 14)
    observed = abs(math.fsum(d))
    hits = sum(abs(math.fsum(s * x for s, x in zip(signs, d, strict=True))) >= observed
               for signs in itertools.product((1, -1), repeat=d.size))  # correctly rounded sums
    assert st.sign_flip_p(d)[0] == hits / 2**d.size


def test_sign_flip_p_is_monte_carlo_above_twenty_seeds_and_agrees_with_scipy():
    d = np.random.default_rng(6).normal(0.35, 1.0, 25)
    p, exact = st.sign_flip_p(d, permutations=200_000, seed=1)
    assert not exact and st.sign_flip_p(d[:20])[1]
    assert p == pytest.approx(_scipy_sign_flip(d, n_resamples=200_000, rng=np.random.default_rng(2)), abs=0.006)
    assert st.sign_flip_p(d, permutations=200_000, seed=1)[0] == p
    # true p is 2^-24: no random pattern of 1000 ties the observed one, and the observed one counts
    assert st.sign_flip_p([1.0] * 25, permutations=1000)[0] == 1 / 1001


# ---------------------------------------------------------------- hierarchical bootstrap
def _loop_bootstrap(per_seed, rounds, seed):
    """Plain loops over rounds and seeds, consuming the generator in the documented order."""
    rng = np.random.default_rng(seed)
    k = len(per_seed)
    picks = rng.integers(0, k, size=(rounds, k))
    blocks = {}
    for s, values in enumerate(per_seed):
        times = sum(1 for b in range(rounds) for j in range(k) if picks[b, j] == s)
        blocks[s] = iter(rng.integers(0, len(values), size=(times, len(values))))
    out = []
    for b in range(rounds):
        seed_means = []
        for j in range(k):
            s = picks[b, j]
            idx = next(blocks[s])
            seed_means.append(sum(per_seed[s][i] for i in idx) / len(idx))
        out.append(sum(seed_means) / k)
    return np.array(out)


RAGGED = [[0.1, 0.9, 0.4, 0.5, 0.7], [0.3], [0.2, 0.8, 0.6, 0.65, 0.1, 0.0, 1.0, 0.45], [0.55, 0.5]]


def test_bootstrap_equals_a_plain_loop_on_the_same_stream():
    vectorised = st.bootstrap_distribution(RAGGED, rounds=300, seed=11)
    assert vectorised == pytest.approx(_loop_bootstrap(RAGGED, 300, 11), abs=1e-12)
    interval = st.hierarchical_bootstrap(RAGGED, rounds=300, seed=11)
    assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(vectorised, [0.025, 0.975])))


def test_bootstrap_point_is_the_mean_of_seed_means_not_of_pooled_prompts():
    interval = st.hierarchical_bootstrap(RAGGED)
    assert interval.mean == pytest.approx(np.mean([np.mean(v) for v in RAGGED]), abs=1e-15)
    assert interval.mean != pytest.approx(np.mean(np.concatenate(RAGGED)))
    assert interval.n_seeds == 4 and interval.low < interval.mean < interval.high


def test_bootstrap_variance_has_both_stages_and_never_pools_prompts():
    """Var* = (var of seed means + mean over seeds of within-seed var / m) / k, all with ddof 0."""
    rng = np.random.default_rng(0)
    per_seed = [rng.normal(mu, 1.0, m) for mu, m in [(0.0, 12), (0.4, 20), (-0.3, 8), (0.1, 16)]]
    k = len(per_seed)
    between = np.var([v.mean() for v in per_seed])
    within = np.mean([v.var() / v.size for v in per_seed])
    draws = st.bootstrap_distribution(per_seed, rounds=40_000, seed=3)
    assert draws.var() == pytest.approx((between + within) / k, rel=0.04)
    assert draws.mean() == pytest.approx(np.mean([v.mean() for v in per_seed]), abs=0.01)


def test_one_value_per_seed_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(8).gamma(2.0, 1.0, 12)
    ours = st.hierarchical_bootstrap([[v] for v in x], rounds=40_000, seed=5)
    ref = sp.bootstrap((x,), np.mean, method="percentile", n_resamples=40_000,
                       rng=np.random.default_rng(9)).confidence_interval
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.03 * width)


def test_one_seed_resamples_its_prompts_like_scipy():
    prompts = np.random.default_rng(10).random(200)
    ours = st.hierarchical_bootstrap([prompts], rounds=40_000, seed=5)
    ref = sp.bootstrap((prompts,), np.mean, method="percentile", n_resamples=40_000,
                       rng=np.random.default_rng(9)).confidence_interval
    width = ref.high - ref.low
    assert ours.n_seeds == 1
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=0.03 * width)


def test_point_mass_cells_give_a_zero_width_interval_at_one_half():
    assert st.hierarchical_bootstrap([[0.5] * 600] * 3) == st.Interval(0.5, 0.5, 0.5, 3)
    assert st.hierarchical_bootstrap([[0.5]]) == st.Interval(0.5, 0.5, 0.5, 1)


def test_bootstrap_is_deterministic_for_a_seed():
    first = st.hierarchical_bootstrap(RAGGED, seed=7)
    assert st.hierarchical_bootstrap(RAGGED, seed=7) == first
    assert st.hierarchical_bootstrap(RAGGED, seed=8) != first


def test_bootstrap_is_vectorised():
    per_seed = np.random.default_rng(1).random((10, 600))
    start = time.perf_counter()
    st.hierarchical_bootstrap(per_seed, rounds=2000)
    assert time.perf_counter() - start < 3.0  # about 0.1 s; a loop over rounds x prompts takes tens of seconds


@pytest.mark.parametrize("bad", [[], [[0.1], []], [[0.1, math.nan]]])
def test_bootstrap_rejects_missing_or_non_finite_values(bad):
    with pytest.raises(ValueError):
        st.hierarchical_bootstrap(bad)


# ---------------------------------------------------------------- paired comparison
def test_paired_difference_resamples_prompts_jointly():
    """Prompts vary with sd 1 but A - B is 0.1 +- 0.01 on each: only joint resampling gives a narrow interval."""
    rng = np.random.default_rng(2)
    a, b = {}, {}
    for s in range(6):
        prompts = rng.normal(0.0, 1.0, 300)
        a[s] = prompts + 0.1 + rng.normal(0.0, 0.01, 300)
        b[s] = prompts
    result = st.paired_difference(a, b, seed=4)
    assert result.n == 6 and result.dropped == () and result.exact
    assert result.mean_diff == pytest.approx(np.mean([np.mean(a[s] - b[s]) for s in a]), abs=1e-12)
    assert 0.09 < result.low < result.mean_diff < result.high < 0.11
    assert result.p_value == pytest.approx(2 / 64)
    assert result.interval == st.hierarchical_bootstrap([a[s] - b[s] for s in range(6)], seed=4)


def test_paired_difference_drops_unshared_seeds_and_reports_them():
    a = {0: [0.6], 1: [0.7], 2: [0.8], 3: [0.9]}
    b = {1: [0.5], 2: [0.5], 3: [0.5], 4: [0.5]}
    result = st.paired_difference(a, b)
    assert (result.n, result.dropped) == (3, (0, 4))
    assert result.p_value == pytest.approx(2 / 8)
    assert result.mean_diff == pytest.approx(0.3)
    assert result.sd == pytest.approx(np.std([0.2, 0.3, 0.4], ddof=1))


def test_paired_difference_against_a_point_mass_and_itself():
    rng = np.random.default_rng(3)
    method = {s: rng.random(50) for s in range(5)}
    pi0 = {s: [0.5] for s in range(5)}  # a scalar cell broadcasts over the other side's prompts
    result = st.paired_difference(method, pi0)
    assert result.mean_diff == pytest.approx(np.mean([method[s].mean() - 0.5 for s in range(5)]), abs=1e-12)
    same = st.paired_difference(pi0, pi0)
    assert (same.mean_diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert math.isnan(st.paired_difference({0: [0.7]}, {0: [0.5]}).sd)


def test_paired_difference_refuses_unpaired_inputs():
    with pytest.raises(ValueError, match="same prompts"):
        st.paired_difference({0: [0.1, 0.2, 0.3]}, {0: [0.1, 0.2]})
    with pytest.raises(ValueError, match="no seed in common"):
        st.paired_difference({0: [0.1]}, {1: [0.1]})


# ---------------------------------------------------------------- t quantile and planning
@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 9, 10, 19, 30, 100, 501])
def test_t_quantile_matches_scipy(df):
    for p in (0.001, 0.025, 0.2, 0.5, 0.6, 0.8, 0.9, 0.95, 0.975, 0.995, 0.9995):
        assert st.t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("p", "df"), [(0.0, 3), (1.0, 3), (0.5, 0), (0.5, 2.5)])
def test_t_quantile_rejects_bad_arguments(p, df):
    with pytest.raises(ValueError):
        st.t_quantile(p, df)


@pytest.mark.parametrize(("sd", "halfwidth", "level"), [(3.3, 3.0, 0.95), (8.0, 3.0, 0.95), (11.1, 2.0, 0.95),
                                                         (1.0, 0.05, 0.95), (3.3, 3.0, 0.9), (5.0, 10.0, 0.95)])
def test_seeds_for_halfwidth_is_the_smallest_count_that_fits(sd, halfwidth, level):
    def half(n):
        return sp.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n)

    n = st.seeds_for_halfwidth(sd, halfwidth, level)
    assert n >= 2 and half(n) <= halfwidth
    assert n == 2 or half(n - 1) > halfwidth


def test_seeds_for_halfwidth_by_hand():
    # t(0.975, 6) * 3.3 / sqrt(7) = 3.05 > 3; t(0.975, 7) * 3.3 / sqrt(8) = 2.76
    assert st.seeds_for_halfwidth(3.3, 3.0) == 8
    assert st.seeds_for_halfwidth(0.0, 1.0) == 2


def test_detectable_difference_matches_the_t_formula_and_the_exact_test_floor():
    for n in (6, 10, 25):
        expected = (sp.t.ppf(0.975, n - 1) + sp.t.ppf(0.8, n - 1)) * 3.3 / math.sqrt(n)
        assert st.detectable_difference(3.3, n) == pytest.approx(expected, rel=1e-9)
    assert st.detectable_difference(3.3, 5) == math.inf  # 2/32 > 0.05: the sign-flip test cannot reject
    assert st.detectable_difference(3.3, 5, level=0.9) < math.inf  # 2/32 < 0.1
    assert st.detectable_difference(3.3, 10, power=0.9) > st.detectable_difference(3.3, 10, power=0.8)


# ---------------------------------------------------------------- stop rate, ranks, formatting
@pytest.mark.parametrize(("fired", "n", "low", "high"), [
    (0, 10, 0.0, 0.27753),  # z^2 / (n + z^2)
    (3, 10, 0.10779, 0.60323),
    (10, 10, 0.72247, 1.0),
    (1, 3, 0.06149, 0.79234),
])
def test_stop_rate_wilson_interval_by_hand(fired, n, low, high):
    interval = st.stop_rate([True] * fired + [False] * (n - fired))
    assert interval == st.Interval(pytest.approx(fired / n), pytest.approx(low, abs=1e-5),
                                   pytest.approx(high, abs=1e-5), n)


def test_average_ranks_share_ties():
    assert st.average_ranks([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    assert st.average_ranks([7, 7, 7]).tolist() == [2, 2, 2]


def test_spearman_matches_scipy_with_and_without_ties():
    rng = np.random.default_rng(12)
    for _ in range(20):
        x = rng.normal(size=300)
        y = x + rng.normal(size=300)
        assert st.spearman(x, y) == pytest.approx(sp.spearmanr(x, y).statistic, abs=1e-12)
        xt, yt = np.round(x), np.round(y * 2) / 2  # many ties on both sides
        assert st.spearman(xt, yt) == pytest.approx(sp.spearmanr(xt, yt).statistic, abs=1e-12)
    assert st.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(st.spearman([1, 1, 1], [1, 2, 3]))


def test_fmt_interval():
    interval = st.Interval(0.382, 0.31, 0.4514, 3)
    assert st.fmt_interval(interval, 100) == "38.2 [31.0, 45.1]"
    assert st.fmt_interval(interval, digits=3) == "0.382 [0.310, 0.451]"
