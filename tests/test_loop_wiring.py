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
import random
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from stubs import StubEngine, StubEnv, stub_run

from mt.config import ConfigError, load_config
from mt.data import split_prompts
from mt.engine import StageError, stage_seed
from mt.estep import dpo_update, gold_labels, rm_labels, rule_pairs
from mt.method import MUTUAL_TAUGHT

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
    assert filt["mstep_labels"] == "gold"


def test_random_labels_flip_a_seeded_share_and_keep_the_pairs(tmp_path):
    result, engine = run(tmp_path, "mstep.labels=random")
    pairs = engine.rm[0]["pairs"]
    assert {frozenset(t[1:]) for t in triples(pairs)} == {frozenset(t[1:]) for t in KEPT}
    flipped = done(result, 1, "mstep_filter")["relabel_flipped"]
    assert flipped == sum((p["id"], p["chosen"], p["rejected"]) not in KEPT for p in pairs)
    again, engine2 = run(tmp_path / "again", "mstep.labels=random")
    assert triples(engine2.rm[0]["pairs"]) == triples(pairs)


def test_gold_labels_need_a_gold_reward(tmp_path):
    with pytest.raises(StageError, match=r"mstep.labels=gold needs an environment with a gold reward \(the gold "
                                         r"world\); use pseudo or random\. Finished stages"):
        run(tmp_path, "mstep.labels=gold")


def test_unknown_labels_are_a_config_error():
    with pytest.raises(ConfigError, match="mstep.labels='oracle'"):
        load_config(None, overrides=["mstep.labels=oracle"])


# ---------------------------------------------------------------- what each stage writes, and on which random numbers
def test_each_stage_of_the_worked_example_writes_what_a_reader_needs(tmp_path):
    result, engine = run(tmp_path)
    root = Path(result.run_dir)
    assert sorted(p.name for p in (root / "iter_1").iterdir()) == [
        "estep_generate", "estep_pairs", "estep_score", "estep_train", "mstep_filter", "mstep_generate", "mstep_train",
        "select"]
    # Who was asked what, in order, under the description a reader sees in the progress display.
    assert [(c[0], c[1], c[-1]) for c in engine.log] == [
        ("tokens", "pi0", "prompt lengths"),
        ("generate", "pi0", "iter 1 E-step: sampling K=3"),
        ("score", "r0", "iter 1 E-step: scoring with r_0"),
        ("generate", "pi0", "iter 1 selection: previous"),
        ("generate", "pi1@2", "iter 1 selection: checkpoint-2"),
        ("generate", "pi1@4", "iter 1 selection: checkpoint-4"),
        *[("score", "r0", "iter 1 selection: judging")] * 3,
        ("generate", "pi1@4", "iter 1 M-step: sampling pi_1"),
        ("generate", "pi0", "iter 1 M-step: sampling pi_0"),
        ("score", "r0", "iter 1 M-step: scoring y_t"),
        ("score", "r0", "iter 1 M-step: scoring y_t-1"),
        ("score", "r1", "iter 1 RM re-ranking"),
    ]
    assert json.loads((root / "data" / "DONE.json").read_text())["metrics"] == {
        "prompts_loaded": 4, "prompts_dropped_too_long": 1, "size_selection": 4, "size_part_1": 3}
    # E-step: 9 samples of pi0 (ccc bb a twice, t t t: 15 tokens); r0's mean reward (5.5 + 5.5 + 3) / 9.
    assert done(result, 1, "estep_generate") == {"prompts": 3, "completions": 9, "new_tokens": 15, "unfinished": 0,
                                                 "tokens_per_s": None}
    assert done(result, 1, "estep_score") == {"reward_mean": pytest.approx(14 / 9)}
    assert done(result, 1, "estep_train") == {"dpo_steps": 4}
    # Selection: every answer kept with its reward; the decision says why.
    answers = [json.loads(line) for line in (root / "iter_1" / "select" / "answers.jsonl").read_text().splitlines()]
    assert answers == [{"id": s, "previous": {"text": "o", "reward": 1.0},
                        "checkpoint-2": {"text": a, "reward": SCORES[a]}, "checkpoint-4": {"text": b, "reward": SCORES[b]}}
                       for s, a, b in zip(SELECTION, "wlol", "wwol", strict=True)]
    assert done(result, 1, "select") == {
        "win_rates": {"checkpoint-2": 0.375, "checkpoint-4": 0.625}, "selected": "checkpoint-4",
        "selected_win_rate": 0.625, "stop": False, "tau": 0.6, "selection_enabled": True,
        "decision": "keep iter_1/estep_train/candidates/checkpoint-4 (win rate 0.625)"}
    # M-step: 24 draws; pi1@4's A B C D (A B C ccc on p2) are 14 tokens, pi0's ccc bb a ccc twice and t x4 are 22.
    assert done(result, 1, "mstep_generate") == {"prompts": 3, "completions": 24, "new_tokens": 36}
    assert done(result, 1, "mstep_filter") == pytest.approx({
        "eps_t": EPS_REWARD, "eps_definition": "reward_std", "filter_enabled": True, "filter_kept": 9,
        "filter_dropped": 3, "filter_drop_share": 3 / 12, "filter_mild_negatives_kept": 2, "margin_mean": 2.4 / 12,
        "pseudo_pairs": 12,
        "pseudo_identical_skipped": 1, "rm_train_pairs": 8, "rm_heldout_pairs": 0,
        "pseudo_agreement_old_rm": 5 / 12})  # no mstep_labels, relabel or gold keys under pseudo labels
    # Nothing held out; r1 scores as r0 does, so it re-ranks nothing.
    assert done(result, 1, "mstep_train") == {"rm_steps": 1, "rm_init": "previous", "rm_rank_correlation_prev": 1.0}


def test_every_draw_is_seeded_by_its_stage_and_compared_draws_share_their_numbers(tmp_path):
    _, engine = run(tmp_path, "select.temperature=0", "sampling.temperature=0.7")
    seed = engine.cfg.run.seed

    def stage(name):
        return stage_seed(seed, 1, name)

    assert [(name, s.n, s.seed, s.temperature) for name, _, s in engine.sampled] == [
        ("pi0", 3, stage("estep_generate"), 0.7),
        ("pi0", 1, stage("select"), 0.0), ("pi1@2", 1, stage("select"), 0.0), ("pi1@4", 1, stage("select"), 0.0),
        ("pi1@4", 4, stage("mstep_generate"), 0.7), ("pi0", 4, stage("mstep_generate"), 0.7)]
    assert engine.dpo[0]["seed"] == stage("estep_train") and engine.rm[0]["seed"] == stage("mstep_train")
    _, default = run(tmp_path / "default")  # select.temperature unset: the sampling temperature
    assert {s.temperature for name, what, s in default.sampled if "selection" in what} == {0.8}


class Short(StubEngine):
    """The ``nth`` ``kind`` call whose description holds ``what`` comes back one short: one row fewer, or with
    ``per_row`` one sample fewer per row. A model that answers or scores too few must fail its stage, not shrink it."""

    kind, what, nth, per_row = "", "", 1, False
    count = 0

    def cut(self, kind, what, out):
        if kind == self.kind and self.what in what:
            self.count += 1
            if self.count == self.nth:
                return [o[:-1] for o in out] if self.per_row else out[:-1]
        return out

    def generate(self, policy, rows, sampling, what):
        outs, stats = super().generate(policy, rows, sampling, what)
        return self.cut("generate", what, outs), stats

    def score(self, reward, prompts, responses, what):
        return self.cut("score", what, super().score(reward, prompts, responses, what))

    def prompt_tokens(self, policy, prompts):
        return self.cut("tokens", "prompt lengths", super().prompt_tokens(policy, prompts))


@pytest.mark.parametrize("kind, what, nth, per_row, stage", [
    ("tokens", "prompt lengths", 1, False, "data"),
    ("generate", "E-step", 1, False, "iter_1/estep_generate"),
    ("generate", "selection: checkpoint-4", 1, False, "iter_1/select"),
    ("generate", "M-step: sampling pi_0", 1, False, "iter_1/mstep_generate"),
    ("generate", "M-step: sampling pi_0", 1, True, "iter_1/mstep_filter"),
    ("score", "M-step: held-out", 2, False, "iter_1/mstep_train"),  # r0's scores of the held-out rejected answers
])
def test_a_model_that_returns_too_few_fails_its_stage(tmp_path, kind, what, nth, per_row, stage):
    engine_class = type("ShortEngine", (Short,), {"kind": kind, "what": what, "nth": nth, "per_row": per_row})
    with pytest.raises(StageError, match=rf"^stage {stage} failed: ValueError: "):
        run(tmp_path, "mstep.heldout_fraction=0.25", engine_class=engine_class)
    assert (tmp_path / "run" / f"{stage}.partial").exists() and not (tmp_path / "run" / stage).exists()


# ---------------------------------------------------------------- a method's parts, and the E-step's other labeller
def test_a_methods_parts_get_the_iteration_the_models_and_their_stage(tmp_path):
    seen = []

    def label(run_, t, models, rows, ctx):
        seen.append(("label", t, models.reward, ctx.name))
        (ctx.dir / "judgments.txt").write_text("kept with the stage")
        return rm_labels(run_, t, models, rows, ctx)

    def make_pairs(run_, t, scored):
        seen.append(("pairs", t, len(scored)))
        return rule_pairs(run_, t, scored)

    def extra_pairs(run_, method_, t, models):
        seen.append(("extra", t, method_ is method, models.policy, run_.env.name))
        return [{"id": "p1", "prompt": [{"role": "user", "content": "p1"}], "chosen": "X", "rejected": "Y"}]

    def policy_update(run_, t, models, pairs, ctx):
        seen.append(("update", t, models.policy, ctx.name))
        return dpo_update(run_, t, models, pairs, ctx)

    method = replace(MUTUAL_TAUGHT, label=label, make_pairs=make_pairs, extra_pairs=extra_pairs,
                     policy_update=policy_update)
    result, engine = run(tmp_path, "mstep.enabled=false", method=method)
    assert seen == [("label", 1, "r0", "estep_score"), ("pairs", 1, 3), ("extra", 1, True, "pi0", "stub"),
                    ("update", 1, "pi0", "estep_train")]
    assert sorted((p["id"], p["chosen"], p["rejected"]) for p in engine.dpo[0]["pairs"]) == [
        ("p1", "X", "Y"), ("p1", "bb", "a"), ("p2", "bb", "a")]
    assert engine.dpo[0]["pairs"][-1]["chosen"] == "X"  # the extra pairs come after the sampled ones
    assert (Path(result.run_dir) / "iter_1" / "estep_score" / "judgments.txt").exists()


@pytest.mark.parametrize("cut", [lambda rs: rs[:-1], lambda rs: [*rs[:-1], rs[-1][:-1]]], ids=["row", "response"])
def test_labels_that_do_not_match_the_samples_fail_the_scoring_stage(tmp_path, cut):
    def label(run_, t, models, rows, ctx):
        rewards, extra = rm_labels(run_, t, models, rows, ctx)
        return cut(rewards), extra

    with pytest.raises(StageError, match=r"^stage iter_1/estep_score failed: ValueError: zip\(\)"):
        run(tmp_path, method=replace(MUTUAL_TAUGHT, label=label))


def test_the_gold_labeller_scores_the_samples_with_the_environments_gold_reward(tmp_path):
    method = replace(MUTUAL_TAUGHT, label=gold_labels)
    table = {"a": 1.0, "bb": 0.1, "ccc": 0.0, "t": 0.5, ("p2", "bb"): 2.0}
    result, engine = run(tmp_path, "mstep.enabled=false", method=method, environment=StubEnv(TRAIN, SELECTION, table))
    # p1: ccc 0, bb 0.1, a 1 (mean 1.1/3): only a is above it. p2 (bb is worth 2 there): mean 1, only bb above it.
    assert triples(engine.dpo[0]["pairs"]) == {("p1", "a", "ccc"), ("p2", "bb", "ccc")}
    assert not engine.calls("score", "E-step")  # no reward model was asked
    assert done(result, 1, "estep_score") == {"reward_mean": pytest.approx((1.1 + 3.0 + 1.5) / 9), "labeller": "gold"}
    with pytest.raises(StageError, match=r"^stage iter_1/estep_score failed: environment 'stub' has no gold reward to "
                                         r"label with\. Finished stages"):
        run(tmp_path / "no-gold", method=method)


# ---------------------------------------------------------------- small cases at the edges
def test_a_single_draw_has_eps_zero_and_its_own_agreement(tmp_path):
    # One prompt, one draw: y_t = A (4) against y_{t-1} = ccc (3) under r0. eps_t is 0 (the std of one reward), the
    # margin 1 is kept, and the old RM agrees with the pseudo-label on 1 of 1 draws.
    result, engine = run(tmp_path, "mstep.samples_per_prompt=1", environment=StubEnv(["p1"], SELECTION))
    filt = done(result, 1, "mstep_filter")
    assert (filt["eps_t"], filt["filter_kept"], filt["pseudo_agreement_old_rm"]) == (0.0, 1, 1.0)
    assert triples(engine.rm[0]["pairs"]) == {("p1", "A", "ccc")}


def test_without_selection_only_the_last_of_three_checkpoints_answers(tmp_path):
    answers = {**ANSWERS, **{("pi1@6", s): ["l"] for s in SELECTION}}
    result, engine = run(tmp_path, "select.enabled=false", answers=answers, steps=(2, 4, 6))
    assert [c[1] for c in engine.calls("generate", "selection")] == ["pi0", "pi1@6"]
    select = done(result, 1, "select")
    assert select["win_rates"] == {"checkpoint-6": 0.0} and select["selected"] == "checkpoint-6"
    assert select["selection_enabled"] is False and not select["stop"]  # a losing last checkpoint is kept all the same
    assert result.policy.endswith("iter_1/estep_train/candidates/checkpoint-6")


def test_without_a_fixed_selection_set_the_data_stage_cuts_one_by_its_seed(tmp_path):
    # 11 prompts; "z" * 41 is over max_prompt_tokens=40 and dropped, "y" * 40 sits on the limit and stays.
    train = [f"q{i}" for i in range(9)] + ["y" * 40, "z" * 41]
    # Of the 10 kept, max_prompts=7 are used: a selection set of 3 and two parts of 2.
    result, engine = run(tmp_path, "data.selection_size=3", "data.num_parts=2", "data.pm_parts=[1, 2]",
                         "data.rm_parts=[2, 1]", "data.max_prompts=7", environment=StubEnv(train, None))
    root = Path(result.run_dir)
    assert json.loads((root / "data" / "DONE.json").read_text())["metrics"] == {
        "prompts_loaded": 11, "prompts_dropped_too_long": 1, "size_selection": 3, "size_part_1": 2, "size_part_2": 2}
    kept = [{"id": p, "prompt": [{"role": "user", "content": p}]} for p in train[:10]]
    expected = split_prompts(kept, 2, 3, stage_seed(engine.cfg.run.seed, None, "data"), 7)
    for name, rows in expected.items():
        assert [json.loads(line) for line in (root / "data" / f"{name}.jsonl").read_text().splitlines()] == rows
    selection = {c[2] for c in engine.calls("generate", "selection")}
    assert selection == {tuple(r["id"] for r in expected["selection"])}


def test_max_prompts_also_cuts_the_parts_beside_a_fixed_selection_set(tmp_path):
    result, _ = run(tmp_path, "data.max_prompts=2")
    data = json.loads((Path(result.run_dir) / "data" / "DONE.json").read_text())["metrics"]
    assert (data["size_part_1"], data["size_selection"]) == (2, 4)


def test_an_empty_fixed_selection_set_is_refused_with_the_reason(tmp_path):
    with pytest.raises(StageError, match=r"^stage data failed: the selection set is empty: every "
                                         r"iteration's selection stage \(and the last checkpoint it keeps without "
                                         r"select\.enabled\) answers it; set data\.selection_size > 0\."):
        run(tmp_path, environment=StubEnv(TRAIN, []))


# ---------------------------------------------------------------- the held-out measurement and the random labels
def test_heldout_accuracy_is_measured_before_and_after_on_the_same_pairs(tmp_path):
    # r1 ties every answer, so after the update no held-out pair is ranked right (a tie is no win).
    scores = {**SCORES, **{("r1", y): 1.0 for y in ["A", "B", "C", "D", "ccc", "bb", "a", "t"]}}
    result, engine = run(tmp_path, "mstep.heldout_fraction=0.5", scores=scores)
    heldout = [json.loads(line) for line in
               (Path(result.run_dir) / "iter_1" / "mstep_filter" / "heldout_pairs.jsonl").read_text().splitlines()]
    # int(8 * 0.5) of the kept pairs, by the stage's seeded shuffle. Under r0: A (4) beats t (1) and ccc (3),
    # B (2.3) loses to bb (2.5), D (3) beats t: 3 of 4 ranked right.
    assert triples(heldout) == {("tie", "A", "t"), ("p2", "A", "ccc"), ("p2", "B", "bb"), ("tie", "D", "t")}
    assert done(result, 1, "mstep_train") == {"rm_steps": 1, "rm_init": "previous",
                                               "rm_heldout_accuracy_before": 0.75, "rm_heldout_accuracy_after": 0.0,
                                              "rm_rank_correlation_prev": None}  # r1's ties have no ranking
    assert [c[1] for c in engine.calls("score", "held-out")] == ["r0", "r0", "r1", "r1"]
    assert [c[2] for c in engine.calls("score", "held-out")] == [tuple(p[side] for p in heldout)
                                                                 for side in ("chosen", "rejected") * 2]
    assert done(result, 1, "mstep_filter")["rm_heldout_pairs"] == 4


def test_random_labels_flip_on_coins_from_the_stage_seed(tmp_path):
    result, engine = run(tmp_path, "mstep.labels=random")
    order = [json.loads(line)["id"] for line in
             (Path(result.run_dir) / "iter_1" / "mstep_generate" / "samples.jsonl").read_text().splitlines()]
    kept_in_draw_order = {"p1": [("A", "ccc"), ("B", "bb"), ("D", "ccc")], "p2": [("A", "ccc"), ("B", "bb")],
                          "tie": [("A", "t"), ("B", "t"), ("D", "t")]}
    # The coins come from Random(stage seed + 1): the held-out shuffle draws from the stage seed itself.
    coins = random.Random(stage_seed(engine.cfg.run.seed, 1, "mstep_filter") + 1)
    expected = set()
    for pid in order:
        for chosen, rejected in kept_in_draw_order[pid]:
            expected.add((pid, rejected, chosen) if coins.random() < 0.5 else (pid, chosen, rejected))
    assert triples(engine.rm[0]["pairs"]) == expected
    filt = done(result, 1, "mstep_filter")
    assert filt["relabel_flipped"] == len(expected - KEPT) and filt["mstep_labels"] == "random"
    assert "relabel_gold_ties_dropped" not in filt


def test_estep_pairs_join_the_rm_data_with_their_prompts(tmp_path):
    _, engine = run(tmp_path, "mstep.include_estep_pairs=true")
    estep = [p for p in engine.rm[0]["pairs"] if p["source"] == "estep"]
    assert sorted(estep, key=lambda p: p["id"]) == [
        {"id": pid, "prompt": [{"role": "user", "content": pid}], "chosen": "bb", "rejected": "a", "source": "estep"}
        for pid in ("p1", "p2")]


def test_the_rm_update_reports_how_it_reranks_the_new_policys_answers(tmp_path):
    # r0 orders the draws A > D = ccc > B > C; r1 (SCORES_2) orders them B > D = ccc > A > C. Over the 12 draws
    # (each rank shared by three prompts): average ranks r0 [11, 5, 2, 8] and r1 [5, 11, 2, 8] per prompt, so
    # Spearman = the Pearson correlation of those ranks = 0.2.
    result, engine = run(tmp_path, scores=SCORES_2)
    (call,) = engine.calls("score", "RM re-ranking")
    assert call[1] == "r1" and len(call[2]) == 12
    assert done(result, 1, "mstep_train")["rm_rank_correlation_prev"] == pytest.approx(0.2)
    assert result.rows[-1]["rm_rank_correlation_prev"] == pytest.approx(0.2)


def test_the_gold_label_ceiling_labels_and_judges_by_gold_and_never_updates_the_rm(tmp_path):
    from reproduce.methods import METHODS

    spec = METHODS.get("mt-gold-labels")
    # Gold orders pi0's samples against r0's scores, and the selection answers (w, l, o) as r0 does not.
    reverse = {"ccc": 0.0, "bb": 0.5, "a": 1.0, "t": 0.2, "o": 0.5, "w": 0.0, "l": 1.0}
    result, engine = run(tmp_path, *spec.overrides, environment=StubEnv(TRAIN, SELECTION, reverse),
                         method=spec.method(load_config(None)))
    assert not engine.calls("score", "E-step") and done(result, 1, "estep_score")["labeller"] == "gold"
    (dpo,) = engine.dpo
    assert all(reverse[c] > reverse[r] for _, c, r in triples(dpo["pairs"])) and dpo["pairs"]
    # Selection judges by gold: the candidate gold prefers on more selection prompts is kept, not r0's choice.
    assert not engine.calls("score", "selection")
    select = done(result, 1, "select")
    assert select["judge"] == "gold" and select["win_rates"] == {"checkpoint-2": 0.625, "checkpoint-4": 0.375}
    assert select["selected"] == "checkpoint-2" and not select["stop"]
    assert not engine.rm and not list(Path(result.run_dir).glob("iter_*/mstep_*"))
    assert result.reward == "r0" and "judge" not in done(run(tmp_path / "mt")[0], 1, "select")


def test_the_gold_judge_needs_a_gold_reward(tmp_path):
    from mt.select import gold_judge

    with pytest.raises(StageError, match=r"^stage iter_1/select failed: environment 'stub' has no gold reward to "
                                         r"judge with\. Finished stages"):
        run(tmp_path, method=replace(MUTUAL_TAUGHT, judge=gold_judge))


def test_a_finished_run_raised_to_more_iterations_ends_as_a_run_started_with_them(tmp_path):
    fresh, _ = run(tmp_path / "fresh", "run.iterations=2", answers=ANSWERS_2, scores=SCORES_2)
    first, _ = run(tmp_path / "extended", "run.iterations=1", answers=ANSWERS_2, scores=SCORES_2)
    assert first.iterations_done == 1
    extended, engine = run(tmp_path / "extended", "run.iterations=2", answers=ANSWERS_2, scores=SCORES_2)
    assert [d["policy"] for d in engine.dpo] == ["pi1@4"]  # only iteration 2 trains; iteration 1 is read back
    assert extended.iterations_done == fresh.iterations_done == 2
    assert Path(extended.policy).relative_to(extended.run_dir) == Path(fresh.policy).relative_to(fresh.run_dir)

    def rows(result):
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in result.rows]

    assert rows(extended) == rows(fresh)
    for stage in ("select", "mstep_filter"):
        assert done(extended, 2, stage) == done(fresh, 2, stage)
