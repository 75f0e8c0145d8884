import statistics

import pytest

from mt.filter import epsilon, filter_stats, keep_mask


def test_boundary_at_exactly_minus_eps_is_dropped():
    assert keep_mask([-0.5, -0.49999, -0.50001, 0.0, 0.3], 0.5) == [False, True, False, True, True]


def test_mild_negatives_are_kept_and_nothing_is_flipped():
    margins = [-0.2, -0.1, 0.4, -1.0]
    mask = keep_mask(margins, 0.3)
    assert mask == [True, True, True, False]
    stats = filter_stats(margins, mask, 0.3)
    assert stats["filter_mild_negatives_kept"] == 2
    assert stats["filter_kept"] == 3 and stats["filter_dropped"] == 1 and stats["filter_drop_share"] == 0.25


def test_eps_definitions():
    prev = [1.0, 2.0, 3.0, 4.0]
    margins = [0.0, 0.0, 2.0, -2.0]
    assert epsilon(prev, margins, "reward_std") == pytest.approx(statistics.pstdev(prev))
    assert epsilon(prev, margins, "margin_std") == pytest.approx(statistics.pstdev(margins))
    with pytest.raises(ValueError, match="reward_std"):
        epsilon(prev, margins, "other")


def test_eps_zero_keeps_only_positive_margins():
    assert keep_mask([-0.0001, 0.0, 0.1], 0.0) == [False, False, True]


def test_reward_std_is_the_default_eps():
    assert epsilon([1.0, 3.0], [0.0, 10.0]) == 1.0  # the std of the rewards, not of the margins (5.0)


def test_eps_of_fewer_than_two_values_is_zero():
    assert epsilon([2.0], [0.5]) == 0.0 and epsilon([], [], "margin_std") == 0.0


def test_filter_stats_refuse_a_mask_of_another_length():
    with pytest.raises(ValueError, match="zip"):
        filter_stats([0.1, -0.2], [True], 0.3)
