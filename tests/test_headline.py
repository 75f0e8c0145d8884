"""The headline: its plan from a pilot's per-seed differences, and its sentence from the paired statistics."""

from __future__ import annotations

import math

import pytest

from mt.options import ConfigError
from reproduce.headline import Headline, differences, parse_headline, power_plan, sentence
from reproduce.stats import detectable_difference, t_quantile
from reproduce.tables import CellResult

H = Headline(methods=["mutual-taught", "mt-no-rm-update"], seeds=10)


def cell(method, seed, values):
    key = "gold_win_rate_vs_pi0"
    return CellResult(method, seed, "run", "d", {key: sum(values) / len(values)}, [], 1, False, 0, "", True,
                      {key: values})


def pilot_cells():
    # Per-seed differences in points: +2, +6, +4.
    return [cell("mutual-taught", 0, [0.52, 0.52]), cell("mt-no-rm-update", 0, [0.5, 0.5]),
            cell("mutual-taught", 1, [0.56]), cell("mt-no-rm-update", 1, [0.5]),
            cell("mutual-taught", 2, [0.54]), cell("mt-no-rm-update", 2, [0.5]), cell("mutual-taught", 3, [0.9])]


def test_differences_pair_the_comparison_seed_by_seed():
    assert differences(pilot_cells(), H) == pytest.approx({0: 2.0, 1: 6.0, 2: 4.0})


def test_the_plan_predicts_the_width_and_the_detectable_difference():
    plan = power_plan(differences(pilot_cells(), H), H, 10, "pilot")
    sd = 2.0  # sd of (2, 6, 4)
    assert plan["sd of per-seed differences"] == pytest.approx(sd)
    assert plan["expected half-width"] == pytest.approx(round(t_quantile(0.975, 9) * sd / math.sqrt(10), 2))
    assert plan["detectable difference (80% power)"] == pytest.approx(round(detectable_difference(sd, 10), 2))
    assert plan["seeds for the target"] == 5  # n=4: t(0.975, 3) * 2 / 2 = 3.18 > 3; n=5: 2.776 * 2 / 2.236 = 2.48
    assert "no pilot" in power_plan({0: 1.0}, H, 10, "pilot")["note"]


def test_the_sentence_states_the_interval_p_and_verdict():
    text = sentence(pilot_cells(), H)
    assert text.startswith("mutual-taught minus mt-no-rm-update: +4.0 points") and "over 3 paired seeds" in text
    assert "p = 0.25" in text  # three positive seeds: 2/8
    assert "mutual-taught is better than mt-no-rm-update by this measure" in text
    assert sentence([cell("mutual-taught", 0, [0.5])], H).endswith("share no finished seed yet")


def test_a_headline_table_is_checked():
    with pytest.raises(ConfigError, match="comparison"):
        parse_headline({"methods": ["mutual-taught"], "comparison": ["mutual-taught", "sppo"]}, "r.toml")
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_headline({"seedz": 3}, "r.toml")
