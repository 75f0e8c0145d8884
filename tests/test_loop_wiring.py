"""The loop's wiring, pinned by hand-computed cases on an engine whose models are tables (tests/stubs.py).

One scenario, worked out by hand below, drives every check: which pairs the E-step builds, which
checkpoint selection keeps and at what win rate, when the stop rule fires, which pseudo-pairs the
M-step keeps, eps_t and the reward model it comes from, the held-out split, and what each switch
(filter, eps, E-step pairs, selection, reference, RM start, labels, rotation) changes.

The scenario. Training prompts p1, p2 and "tie" (a 50-character prompt is over data.max_prompt_tokens=40
and dropped); one part feeds both updates. r0 scores: ccc 3, bb 2.5, a 0, t 1, o 1, w 2, l 0,
A 4, B 2.3, C -1.5, D 3.

E-step (K=3). pi0 answers ccc, bb, a on p1 and p2: mean 11/6, above it ccc and bb, the shortest of those
is bb: the pair is bb over a (max_min: ccc over a). On "tie" pi0 answers t three times: skipped.

Selection. pi0 answers o on s1..s4 (1 each). Candidate pi1@2 answers w l o l: 1 + 0 + 1/2 + 0 = 1.5/4 =
0.375; pi1@4 answers w w o l: 2.5/4 = 0.625, kept; with tau 0.63 the run stops.

M-step (4 draws per prompt; y_t from pi1@4: A B C D, on p2 A B C ccc; y_{t-1} from pi0: ccc bb a ccc,
on "tie" t t t t). Margins under r0: p1 [1, -0.2, -1.5, 0], p2 the same, tie [3, 1.3, -2.5, 2].
eps_t = population std of r0(y_{t-1}) = std[3, 2.5, 0, 3, 3, 2.5, 0, 3, 1, 1, 1, 1] = 1.14564 (reward_std);
the std of the margins is 1.50111 (margin_std). Dropped where delta <= -eps: the three C draws under
reward_std, only tie's C under margin_std. p2's fourth draw is ccc against ccc: kept, but identical.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from stubs import StubEnv, stub_run

from mt.config import ConfigError, load_config
from mt.engine import StageError

TRAIN = ["p1", "p2", "tie", "x" * 50]
SELECTION = ["s1", "s2", "s3", "s4"]
ANSWERS = {
    "pi0": ["ccc", "bb", "a"], ("pi0", "tie"): ["t"],
    **{("pi0", s): ["o"] for s in SELECTION},
    **{("pi1@2", s): [a] for s, a in zip(SELECTION, "wlol", strict=True)},
    **{("pi1@4", s): [a] for s, a in zip(SELECTION, "wwol", strict=True)},
    "pi1@4": ["A", "B", "C", "D"], ("pi1@4", "p2"): ["A", "B", "C", "ccc"],
}
SCORES = {"ccc": 3, "bb": 2.5, "a": 0, "t": 1, "o": 1, "w": 2, "l": 0, "A": 4, "B": 2.3, "C": -1.5, "D": 3}
KEPT = {("p1", "A", "ccc"), ("p1", "B", "bb"), ("p1", "D", "ccc"), ("p2", "A", "ccc"), ("p2", "B", "bb"),
        ("tie", "A", "t"), ("tie", "B", "t"), ("tie", "D", "t")}
C_DRAWS = {("p1", "C", "a"), ("p2", "C", "a"), ("tie", "C", "t")}
EPS_REWARD = statistics.pstdev([3, 2.5, 0, 3, 3, 2.5, 0, 3, 1, 1, 1, 1])
EPS_MARGIN = statistics.pstdev([1, -0.2, -1.5, 0, 1, -0.2, -1.5, 0, 3, 1.3, -2.5, 2])


def env() -> StubEnv:
    return StubEnv(TRAIN, SELECTION)


def run(tmp_path, *overrides, answers=ANSWERS, scores=SCORES, environment=None, **kwargs):
    return stub_run(tmp_path, environment or env(), answers, scores, overrides, **kwargs)


def done(result, t, stage) -> dict:
    return json.loads((Path(result.run_dir) / f"iter_{t}" / stage / "DONE.json").read_text())["metrics"]


def triples(pairs) -> set[tuple[str, str, str]]:
    return {(p["id"], p["chosen"], p["rejected"]) for p in pairs}


def test_one_iteration_worked_by_hand(tmp_path):
    result, engine = run(tmp_path)
    data = json.loads((Path(result.run_dir) / "data" / "DONE.json").read_text())["metrics"]
    assert data["prompts_dropped_too_long"] == 1 and data["size_part_1"] == 3 and data["size_selection"] == 4

    # E-step: K=3 samples of pi0 on the part, labelled by r0, the mt rule, DPO from pi0 with pi0 as reference.
    (sampled,) = engine.calls("generate", "E-step")
    assert sampled[1] == "pi0" and sorted(sampled[2]) == ["p1", "p2", "tie"] and sampled[3] == 3
    assert {c[1] for c in engine.calls("score", "E-step")} == {"r0"}
    (dpo,) = engine.dpo
    assert dpo["policy"] == "pi0" and dpo["reference_path"] is None
    assert triples(dpo["pairs"]) == {("p1", "bb", "a"), ("p2", "bb", "a")}
    assert done(result, 1, "estep_pairs") == {"pairs_built": 2, "pairs_skipped_tie": 1, "pair_rule": "mt"}

    # Selection: every candidate and pi0 answer the selection set once; r0 judges; the better rate wins.
    answered = [(c[1], c[3]) for c in engine.calls("generate", "selection")]
    assert answered == [("pi0", 1), ("pi1@2", 1), ("pi1@4", 1)]
    assert {c[1] for c in engine.calls("score", "selection")} == {"r0"}
    select = done(result, 1, "select")
    assert select["win_rates"] == {"checkpoint-2": 0.375, "checkpoint-4": 0.625}
    assert select["selected"] == "checkpoint-4" and select["selected_win_rate"] == 0.625 and not select["stop"]

    # M-step: y_t from the kept candidate and y_{t-1} from pi0, both scored by the OLD RM r0.
    assert [(c[1], c[3]) for c in engine.calls("generate", "M-step")] == [("pi1@4", 4), ("pi0", 4)]
    assert {c[1] for c in engine.calls("score", "M-step")} == {"r0"}
    filt = done(result, 1, "mstep_filter")
    assert filt["eps_t"] == pytest.approx(EPS_REWARD) and filt["eps_t"] == pytest.approx(1.1456439, abs=1e-6)
    assert (filt["filter_kept"], filt["filter_dropped"], filt["filter_mild_negatives_kept"]) == (9, 3, 2)
    assert filt["pseudo_identical_skipped"] == 1 and filt["pseudo_pairs"] == 12
    assert filt["pseudo_agreement_old_rm"] == pytest.approx(5 / 12)  # delta > 0: A on p1, p2; A, B, D on tie
    (rm,) = engine.rm
    assert rm["init"] == "r0" and triples(rm["pairs"]) == KEPT
    assert all(p["source"] == "pseudo" for p in rm["pairs"])
    assert result.iterations_done == 1 and not result.stopped
    assert (result.policy.endswith("iter_1/estep_train/candidates/checkpoint-4")
            and result.reward.endswith("iter_1/mstep_train/model"))


@pytest.mark.parametrize("tau, stops", [(0.63, True), (0.626, True), (0.625, False), (0.6, False)])
def test_the_stop_rule_fires_only_below_tau(tmp_path, tau, stops):
    result, engine = run(tmp_path, f"select.tau={tau}")
    assert result.stopped is stops and done(result, 1, "select")["stop"] is stops
    if stops:
        assert (result.iterations_done, result.policy, result.reward) == (0, "pi0", "r0")
        assert not engine.calls("generate", "M-step") and not engine.rm
        assert not (Path(result.run_dir) / "iter_1" / "mstep_generate").exists()
    else:
        assert result.iterations_done == 1 and len(engine.rm) == 1


def test_without_selection_the_last_checkpoint_is_kept_and_nothing_stops(tmp_path):
    result, engine = run(tmp_path, "select.enabled=false", "select.tau=1.0")
    assert [c[1] for c in engine.calls("generate", "selection")] == ["pi0", "pi1@4"]
    select = done(result, 1, "select")
    assert select["win_rates"] == {"checkpoint-4": 0.625} and not select["stop"] and not result.stopped
    assert not load_config(None, overrides=["select.enabled=false"]).select.stop_rule


def test_the_earlier_checkpoint_wins_a_tie(tmp_path):
    answers = {**ANSWERS, **{("pi1@4", s): [a] for s, a in zip(SELECTION, "wlol", strict=True)}}
    result, _ = run(tmp_path, "select.tau=0.3", answers=answers)
    assert done(result, 1, "select")["selected"] == "checkpoint-2"


@pytest.mark.parametrize("overrides, kept, eps", [
    ((), KEPT, EPS_REWARD),
    (("mstep.eps=margin_std",), KEPT | {("p1", "C", "a"), ("p2", "C", "a")}, EPS_MARGIN),
    (("mstep.filter=false",), KEPT | C_DRAWS, EPS_REWARD),
])
def test_the_filter_keeps_exactly_the_pairs_above_minus_eps(tmp_path, overrides, kept, eps):
    result, engine = run(tmp_path, *overrides)
    filt = done(result, 1, "mstep_filter")
    assert filt["eps_t"] == pytest.approx(eps)
    assert triples(engine.rm[0]["pairs"]) == kept
    assert filt["filter_enabled"] is ("mstep.filter=false" not in overrides)


def test_estep_pairs_join_the_rm_data_only_when_asked(tmp_path):
    result, engine = run(tmp_path, "mstep.include_estep_pairs=true")
    pairs = engine.rm[0]["pairs"]
    assert triples(p for p in pairs if p["source"] == "pseudo") == KEPT
    assert triples(p for p in pairs if p["source"] == "estep") == {("p1", "bb", "a"), ("p2", "bb", "a")}
    assert done(result, 1, "mstep_filter")["rm_train_pairs"] == 10


def test_the_heldout_split_is_a_seeded_share_of_the_kept_pairs(tmp_path):
    result, engine = run(tmp_path, "mstep.heldout_fraction=0.25", "mstep.include_estep_pairs=true")
    heldout = [json.loads(line) for line in
               (Path(result.run_dir) / "iter_1" / "mstep_filter" / "heldout_pairs.jsonl").read_text().splitlines()]
    train = engine.rm[0]["pairs"]
    assert len(heldout) == 2 and all(p["source"] == "pseudo" for p in heldout)  # int(8 * 0.25)
    assert triples(heldout) | triples(p for p in train if p["source"] == "pseudo") == KEPT
    assert not triples(heldout) & triples(train)
    metrics = done(result, 1, "mstep_train")
    assert "rm_heldout_accuracy_before" in metrics and "rm_heldout_accuracy_after" in metrics
    again, _ = run(tmp_path / "again", "mstep.heldout_fraction=0.25", "mstep.include_estep_pairs=true")
    assert (Path(again.run_dir) / "iter_1/mstep_filter/heldout_pairs.jsonl").read_text() == (
        Path(result.run_dir) / "iter_1/mstep_filter/heldout_pairs.jsonl").read_text()


def test_without_rm_update_the_reward_model_stays_r0(tmp_path):
    result, engine = run(tmp_path, "mstep.enabled=false")
    assert not engine.rm and result.reward == "r0" and not engine.calls("generate", "M-step")


def test_max_min_pairs_take_the_highest_reward(tmp_path):
    _, engine = run(tmp_path, "estep.pair_rule=max_min")
    assert triples(engine.dpo[0]["pairs"]) == {("p1", "ccc", "a"), ("p2", "ccc", "a")}


# ---------------------------------------------------------------- two iterations: what carries over
# Iteration 2 starts from pi1@4 and r1. pi1@4 answers A B C on p1, p2 and tie; r1 scores A 1, B 5, C 0, so
# the E-step pair is B over C (under r0 it would be A over C). Candidates pi2@2 (w w o l) and pi2@4 (w w w w)
# face pi1@4 (w w o l) on the selection set; r1 scores w 2 as r0 does, so pi2@4 wins 0.75. The M-step draws
# from pi2@4 (default answers, scored 0 by r1) and pi1@4 (A B C D), scored by r1: A 1, B 5, C 0, D 3.
ANSWERS_2 = {**ANSWERS, **{("pi2@2", s): [a] for s, a in zip(SELECTION, "wwol", strict=True)},
             **{("pi2@4", s): ["w"] for s in SELECTION}}
SCORES_2 = {**SCORES, ("r1", "A"): 1, ("r1", "B"): 5, ("r1", "C"): 0, ("r1", "D"): 3}


def test_the_second_iteration_uses_the_first_ones_models(tmp_path):
    result, engine = run(tmp_path, "run.iterations=2", answers=ANSWERS_2, scores=SCORES_2)
    assert result.iterations_done == 2
    second = engine.dpo[1]
    assert second["policy"] == "pi1@4" and second["reference_path"] is None
    assert triples(second["pairs"]) == {("p1", "B", "C"), ("p2", "B", "C"), ("tie", "B", "C")}
    assert {c[1] for c in engine.calls("score", "iter 2 E-step")} == {"r1"}
    assert {c[1] for c in engine.calls("score", "iter 2 selection")} == {"r1"}
    assert done(result, 2, "select")["win_rates"] == {"checkpoint-2": 0.5, "checkpoint-4": 0.75}
    assert [c[1] for c in engine.calls("generate", "iter 2 M-step")] == ["pi2@4", "pi1@4"]
    assert {c[1] for c in engine.calls("score", "iter 2 M-step")} == {"r1"}
    # eps_2 is the std of r1 on pi1@4's draws: [1, 5, 0, 3] on each of the three prompts.
    assert done(result, 2, "mstep_filter")["eps_t"] == pytest.approx(statistics.pstdev([1, 5, 0, 3] * 3))
    assert engine.rm[1]["init"] == "r1"
    assert result.policy.endswith("iter_2/estep_train/candidates/checkpoint-4")


@pytest.mark.parametrize("overrides, init_2, reference", [
    (("mstep.init=base",), "r0", None),
    (("estep.reference=initial",), "r1", "pi0"),
])
def test_rm_start_and_dpo_reference_switches(tmp_path, overrides, init_2, reference):
    _, engine = run(tmp_path, "run.iterations=2", *overrides, answers=ANSWERS_2, scores=SCORES_2)
    assert [rm["init"] for rm in engine.rm] == ["r0", init_2]
    assert [d["reference_path"] for d in engine.dpo] == [reference, reference]
    assert [d["policy"] for d in engine.dpo] == ["pi0", "pi1@4"]


def test_parts_rotate_between_the_updates(tmp_path):
    environment = StubEnv([f"q{i}" for i in range(6)], SELECTION)
    result, engine = run(tmp_path, "data.num_parts=2", "data.pm_parts=[1, 2]", "data.rm_parts=[2, 1]",
                         "run.iterations=2", "select.tau=0", environment=environment)
    parts = {name: {json.loads(line)["id"] for line in (Path(result.run_dir) / "data" / f"{name}.jsonl")
                    .read_text().splitlines()} for name in ("part_1", "part_2")}
    assert len(parts["part_1"]) == len(parts["part_2"]) == 3 and not parts["part_1"] & parts["part_2"]
    used = {what: set(c[2]) for c in engine.calls("generate") for what in [c[4].split(":")[0]]}
    assert used["iter 1 E-step"] == parts["part_1"] and used["iter 1 M-step"] == parts["part_2"]
    assert used["iter 2 E-step"] == parts["part_2"] and used["iter 2 M-step"] == parts["part_1"]


# ---------------------------------------------------------------- M-step labels: the oracle and random controls
GOLD = {"A": 1.0, "B": 0.2, "C": 0.0, "D": 0.5, "ccc": 0.5, "bb": 0.4, "a": 0.0, "t": 0.2}


def test_gold_labels_orient_the_very_pairs_the_filter_kept(tmp_path):
    result, engine = run(tmp_path, "mstep.labels=gold", environment=StubEnv(TRAIN, SELECTION, GOLD))
    # Gold: A beats ccc and t; B (0.2) loses to bb (0.4) and ties t (0.2: dropped); D (0.5) ties ccc, beats t.
    assert triples(engine.rm[0]["pairs"]) == {("p1", "A", "ccc"), ("p1", "bb", "B"), ("p2", "A", "ccc"),
                                              ("p2", "bb", "B"), ("tie", "A", "t"), ("tie", "D", "t")}
    filt = done(result, 1, "mstep_filter")
    assert filt["relabel_gold_ties_dropped"] == 2 and filt["relabel_flipped"] == 2
    # The pseudo-labels' own quality under gold, logged whatever the labels: 4 of the 6 gold-decided pairs agree.
    assert filt["pseudo_gold_accuracy"] == pytest.approx(4 / 6) and filt["pseudo_gold_pairs"] == 6


def test_random_labels_flip_a_seeded_share_and_keep_the_pairs(tmp_path):
    result, engine = run(tmp_path, "mstep.labels=random")
    pairs = engine.rm[0]["pairs"]
    assert {frozenset(t[1:]) for t in triples(pairs)} == {frozenset(t[1:]) for t in KEPT}
    flipped = done(result, 1, "mstep_filter")["relabel_flipped"]
    assert flipped == sum((p["id"], p["chosen"], p["rejected"]) not in KEPT for p in pairs)
    again, engine2 = run(tmp_path / "again", "mstep.labels=random")
    assert triples(engine2.rm[0]["pairs"]) == triples(pairs)


def test_gold_labels_need_a_gold_reward(tmp_path):
    with pytest.raises(StageError, match="mstep.labels=gold needs an environment with a gold reward"):
        run(tmp_path, "mstep.labels=gold")


def test_unknown_labels_are_a_config_error():
    with pytest.raises(ConfigError, match="mstep.labels='oracle'"):
        load_config(None, overrides=["mstep.labels=oracle"])


def test_the_rm_update_reports_how_it_reranks_the_new_policys_answers(tmp_path):
    # r0 orders the draws A > D = ccc > B > C; r1 (SCORES_2) orders them B > D = ccc > A > C. Over the 12 draws
    # (each rank shared by three prompts): average ranks r0 [11, 5, 2, 8] and r1 [5, 11, 2, 8] per prompt, so
    # Spearman = the Pearson correlation of those ranks = 0.2.
    result, engine = run(tmp_path, scores=SCORES_2)
    (call,) = engine.calls("score", "RM re-ranking")
    assert call[1] == "r1" and len(call[2]) == 12
    assert done(result, 1, "mstep_train")["rm_rank_correlation_prev"] == pytest.approx(0.2)
    assert result.rows[-1]["rm_rank_correlation_prev"] == pytest.approx(0.2)
