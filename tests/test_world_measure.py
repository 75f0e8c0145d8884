"""The gold world's pure measurements and labellers, on hand-made samples (no models)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mt.generate import Completion
from mt.world.controls import controls_order, label
from mt.world.measure import kl_estimate, onpolicy_accuracy_by_family, win_rates_by_prompt


def graded(*golds):
    return [{"text": str(g), "gold": g} for g in golds]


def test_win_rates_are_per_prompt_with_ties_half():
    mine = [graded(1.0, 0.5), graded(0.2, 0.2)]
    base = [graded(0.5, 0.5), graded(0.9, 0.1)]
    assert win_rates_by_prompt(mine, base) == [0.75, 0.5]


def test_kl_is_the_mean_log_ratio_on_the_policys_samples():
    assert kl_estimate([-1.0, -2.0], [-1.5, -3.5]) == pytest.approx(1.0)
    assert kl_estimate([-1.0], [-1.0]) == 0.0


def test_onpolicy_accuracy_splits_by_family():
    rows = [{"family": "add"}, {"family": "sort"}]
    samples = [graded(1.0, 0.0), graded(1.0, 0.0)]
    scores = [[2.0, 1.0], [0.0, 3.0]]  # right on add, wrong on sort
    by = onpolicy_accuracy_by_family(rows, samples, scores, ["add", "sort", "reverse"])
    assert by["add"] == 1.0 and by["sort"] == 0.0 and math.isnan(by["reverse"])


def test_labellers_gold_inverted_and_a_seeded_coin():
    world = SimpleNamespace(config=SimpleNamespace(marker_penalty=0.1))
    rows = [{"family": "reverse", "answer": "cba"}]
    outs = [[Completion("cba", 3, True), Completion("Sure! cba", 5, True), Completion("xba", 3, True)]]
    gold = label(world, "gold", rows, outs)
    assert gold == [[1.0, pytest.approx(0.9), pytest.approx(2 / 3)]]
    assert label(world, "inverted", rows, outs) == [[-g for g in gold[0]]]
    coin = label(world, "random", rows, outs, seed=3)
    assert coin == label(world, "random", rows, outs, seed=3) != label(world, "random", rows, outs, seed=4)
    with pytest.raises(ValueError, match="unknown labeller"):
        label(world, "oracle", rows, outs)


def test_controls_order_is_strict_and_skips_missing_labellers():
    def res(**rates):
        return {k: {"gold_win_rate_vs_pi0": v} for k, v in rates.items()}

    assert controls_order(res(gold=0.6, r0=0.55, random=0.5, inverted=0.4))
    assert not controls_order(res(gold=0.6, r0=0.61, random=0.5, inverted=0.4))
    assert controls_order(res(gold=0.6, inverted=0.4))
    assert not controls_order(res(gold=0.5, inverted=0.5))


def test_order_gaps_are_paired_per_prompt_with_an_interval_over_prompts():
    from reproduce.cli import order_gaps

    def res(**per_prompt):
        return {k: {"per_prompt": {"gold_win_rate_vs_pi0": v}} for k, v in per_prompt.items()}

    gold, r0 = [0.5, 1.0, 0.75, 0.5], [0.5, 0.75, 0.75, 0.25]
    (gap,) = order_gaps(res(gold=gold, r0=r0, pi0=[0.5] * 4))  # pi_0 is not a labeller
    assert (gap["higher"], gap["lower"]) == ("gold", "r0")
    assert gap["interval"].mean == pytest.approx(0.125) and gap["interval"].low == 0.0
    assert 0.125 < gap["interval"].high <= 0.25
    # Adjacent in the expected order, skipping a labeller that was not run.
    gaps = order_gaps(res(inverted=[0.0] * 4, gold=gold, random=r0))
    assert [(g["higher"], g["lower"]) for g in gaps] == [("gold", "random"), ("random", "inverted")]
