"""SEAM arithmetic on hand-computed records, and its two uses (prompt selection, RM augmentation)."""

import math
import random

import pytest

from mt.seam.metric import (
    MODES,
    average_ranks,
    hacks,
    is_reconstructed,
    kendall_tau_b,
    prompt_seam,
    spearman,
    summarise,
)
from mt.seam.use import augmentation_pairs, random_augmentation, seam_augmentation, select_prompts


def judged(pm_mean, pm_sum, rm, text="y"):
    return {"text": text, "pm_mean": pm_mean, "pm_sum": pm_sum, "rm": rm}


# Softmax of pm_mean over {y*, y1, y2, y3} = [1, 2, 1, 4] / 8; y1 and y3 beat y* under the RM.
# PM by summed log-probability prefers y1 and y2 to y*.
RECORD = {
    "id": "x",
    "prompt": [{"role": "user", "content": "q"}],
    "gold": judged(0.0, -3.0, 1.0, "gold"),
    "worse": [judged(math.log(2), -2.0, 2.0, "y1"), judged(0.0, -1.0, 0.0, "y2"),
              judged(math.log(4), -5.0, 3.0, "y3")],
}


@pytest.mark.parametrize("mode, expected", [
    ("weighted", 2 / 8 + 4 / 8),  # weights of the hacked y1 and y3
    ("count", 2 / 3),
    ("pm_and_rm", 1 / 3),  # only y1 is preferred by both
    # PM ranks (by sum) [2, 3, 4, 1], RM ranks [2, 3, 1, 4]: sum d^2 = 18, rho = 1 - 6*18/(4*15) = -0.8
    ("rank", (1 + 0.8) / 2),
])
def test_every_mode_on_a_hand_computed_record(mode, expected):
    assert prompt_seam(RECORD, mode) == pytest.approx(expected)


def test_rank_mode_with_kendall():
    # Of the six pairs only (y*, y1) is ordered alike by both models: tau = (1 - 5) / 6.
    assert prompt_seam(RECORD, "rank", rank_method="kendall") == pytest.approx((1 + 2 / 3) / 2)


def test_weighted_mode_can_read_the_summed_log_probability():
    weights = [math.exp(x) for x in (-3.0, -2.0, -1.0, -5.0)]
    expected = (weights[1] + weights[3]) / sum(weights)
    assert prompt_seam(RECORD, "weighted", pm="sum") == pytest.approx(expected)


def test_rank_mode_is_one_half_when_a_model_ties_everything():
    record = {**RECORD, "worse": [{**w, "rm": 1.0} for w in RECORD["worse"]]}
    assert prompt_seam(record, "rank") == 0.5


def test_rank_mode_spans_zero_to_one():
    agree = {"gold": judged(0, 3, 3), "worse": [judged(0, 2, 2), judged(0, 1, 1)]}
    reverse = {"gold": judged(0, 3, 1), "worse": [judged(0, 2, 2), judged(0, 1, 3)]}
    assert prompt_seam(agree, "rank") == 0.0
    assert prompt_seam(reverse, "rank") == 1.0


def test_hack_is_a_strict_inequality():
    assert hacks(judged(0, 0, 1.0), [judged(0, 0, 1.0), judged(0, 0, 1.5)]) == [False, True]


def test_raising_a_worse_answers_reward_above_gold_raises_seam():
    rng = random.Random(0)
    for _ in range(200):
        gold = judged(rng.uniform(-3, 0), rng.uniform(-30, 0), rng.uniform(-2, 2))
        worse = [judged(rng.uniform(-3, 0), rng.uniform(-30, 0), rng.uniform(-2, 2)) for _ in range(4)]
        k = rng.randrange(4)
        worse[k]["rm"] = gold["rm"] - 0.5
        before = {"gold": gold, "worse": worse}
        after = {"gold": gold, "worse": [*worse[:k], {**worse[k], "rm": gold["rm"] + 0.5}, *worse[k + 1:]]}
        assert prompt_seam(after, "weighted") > prompt_seam(before, "weighted")
        assert prompt_seam(after, "count") > prompt_seam(before, "count")
        pm_prefers = worse[k]["pm_sum"] > gold["pm_sum"]
        change = prompt_seam(after, "pm_and_rm") - prompt_seam(before, "pm_and_rm")
        assert change == pytest.approx(0.25 if pm_prefers else 0.0)


def test_only_count_is_the_papers_literal_quantity():
    assert [m for m in MODES if not is_reconstructed(m)] == ["count"]
    with pytest.raises(ValueError, match="unknown SEAM mode 'bogus'"):
        prompt_seam(RECORD, "bogus")


def test_a_prompt_without_worse_answers_is_an_error():
    with pytest.raises(ValueError, match="no worse answers"):
        prompt_seam({**RECORD, "worse": []})


def test_average_ranks_share_ties():
    assert average_ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]


def test_rank_correlation_of_a_constant_ordering_is_undefined():
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert kendall_tau_b([1, 2, 3], [4, 4, 4]) is None


def test_rank_correlations_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for _ in range(50):
        xs = [rng.randint(0, 4) for _ in range(6)]
        ys = [rng.randint(0, 4) for _ in range(6)]
        if len(set(xs)) < 2 or len(set(ys)) < 2:
            continue
        assert spearman(xs, ys) == pytest.approx(stats.spearmanr(xs, ys).statistic)
        assert kendall_tau_b(xs, ys) == pytest.approx(stats.kendalltau(xs, ys).statistic)


def test_summary_is_the_mean_over_prompts_with_every_mode_and_family():
    other = {"id": "z", "family": "b", "prompt": "p", "gold": judged(0, -1, 5.0, "g"),
             "worse": [judged(0, -2, 0.0, "w")]}
    records = [{**RECORD, "family": "a"}, other]
    out = summarise(records, "count")
    assert out["seam"] == pytest.approx((2 / 3 + 0) / 2)
    assert out["hack_rate"] == pytest.approx(2 / 4)
    assert out["by_mode"]["weighted"] == pytest.approx((0.75 + 0) / 2)
    assert out["by_family"] == {"a": pytest.approx(2 / 3), "b": 0.0}
    assert (out["prompts"], out["worse_answers"]) == (2, 4)


# ---------------------------------------------------------------- uses
def test_select_prompts_drops_the_top_fraction_or_as_many_at_random():
    scores = {"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.5, "e": 0.0}
    assert select_prompts(scores, 0.4, "seam") == (["b", "d", "e"], ["a", "c"])
    kept, dropped = select_prompts(scores, 0.4, "random", seed=3)
    assert len(dropped) == 2 and sorted(kept + dropped) == sorted(scores)
    assert select_prompts(scores, 0.4, "random", seed=3) == (kept, dropped)
    assert {tuple(select_prompts(scores, 0.4, "random", seed=s)[1]) for s in range(20)} != {("a", "c")}
    with pytest.raises(ValueError, match="fraction"):
        select_prompts(scores, 1.5)


def records_for_augmentation():
    out = []
    for i, seam in enumerate([0.9, 0.8, 0.1, 0.0]):
        gold = judged(0, 0, 1.0, f"gold{i}")
        worse = [judged(0, 0, 2.0 if j < 2 - i // 2 else 0.0, f"w{i}{j}") for j in range(3)]
        out.append({"id": str(i), "prompt": [{"role": "user", "content": f"q{i}"}], "gold": gold, "worse": worse,
                    "seam": seam})
    return out


def test_seam_augmentation_pairs_gold_over_each_misjudged_answer_of_the_top_prompts():
    pairs = seam_augmentation(records_for_augmentation(), 0.5)
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("0", "gold0", "w00"), ("0", "gold0", "w01"), ("1", "gold1", "w10"), ("1", "gold1", "w11")]
    assert pairs[0]["prompt"] == [{"role": "user", "content": "q0"}]


def test_random_augmentation_has_the_same_size_and_format():
    records = records_for_augmentation()
    guided = augmentation_pairs(records, 0.5, "seam")
    plain = augmentation_pairs(records, 0.5, "random", seed=1)
    assert len(plain) == len(guided) == 4
    assert plain == random_augmentation(records, 4, seed=1)
    assert {p["origin"] for p in plain} == {"random"} and {p["origin"] for p in guided} == {"seam"}
    for p in plain:
        record = next(r for r in records if r["id"] == p["id"])
        assert p["chosen"] == record["gold"]["text"] and p["rejected"] in {w["text"] for w in record["worse"]}


def test_augmentation_pairs_train_the_reward_model_as_they_are():
    from mt.updates import preference_dataset

    data = preference_dataset(augmentation_pairs(records_for_augmentation(), 0.5))
    assert data.column_names == ["prompt", "chosen", "rejected"] and len(data) == 4
