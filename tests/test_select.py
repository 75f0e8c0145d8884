import pytest

from mt.select import decide, win_rate


def test_win_rate_counts_ties_as_half():
    assert win_rate([1, 2, 3, 4], [0, 2, 5, 1]) == pytest.approx((1 + 0.5 + 0 + 1) / 4)


def test_best_candidate_is_kept():
    d = decide({"checkpoint-50": 0.62, "checkpoint-100": 0.71, "checkpoint-120": 0.70}, tau=0.6)
    assert d.best == "checkpoint-100" and not d.stop and d.win_rate == 0.71


def test_stop_rule_fires_below_tau_only():
    assert decide({"a": 0.59, "b": 0.55}, tau=0.6).stop
    assert not decide({"a": 0.6}, tau=0.6).stop  # exactly tau continues
    assert not decide({"a": 0.1}, tau=0.6, stop_rule=False).stop


def test_earliest_checkpoint_wins_ties():
    assert decide({"checkpoint-1": 0.7, "checkpoint-2": 0.7}, tau=0.5).best == "checkpoint-1"


def test_errors():
    with pytest.raises(ValueError):
        decide({}, tau=0.5)
    with pytest.raises(ValueError):
        win_rate([1], [1, 2])


def test_errors_say_what_is_wrong():
    for candidate, previous in (([1], [1, 2]), ([1, 2], [1]), ([], [])):
        with pytest.raises(ValueError, match="^win_rate needs two equally long, non-empty reward lists$"):
            win_rate(candidate, previous)
    with pytest.raises(ValueError, match="^no candidate checkpoints to select from$"):
        decide({}, tau=0.5)


def test_the_decision_gives_its_reason():
    assert decide({"checkpoint-2": 0.59}, tau=0.6).reason == (
        "best win rate 0.590 < tau 0.6: keep pi_(t-1) and stop")
    assert decide({"checkpoint-2": 0.2, "checkpoint-4": 0.7105}, tau=0.6).reason == (
        "keep checkpoint-4 (win rate 0.711)")
