"""Meta-Rewarding's distinguishing rules on hand-computed values, and one run on the gold world."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from stubs import StubEngine, StubEnv

from mt.config import ConfigError, load_config, load_section
from mt.engine import Models
from mt.method import Run
from mt.records import InputError, write_jsonl
from mt.rundir import StageContext
from reproduce.methods import METHODS
from reproduce.methods.meta_rewarding import (
    MetaRewarding,
    MetaRewardingOptions,
    build_judge_pairs,
    length_controlled_pair,
    mean_score,
    pair_accuracy,
    parse_judgments,
    rho_at,
)


# ---------------------------------------------------------------- actor pairs: length control
def test_rho_zero_is_best_vs_worst_shortest_and_longest():
    scores, lengths = [3.0, 5.0, 1.0, 5.0, 1.0], [4, 9, 6, 3, 2]
    assert length_controlled_pair(scores, lengths, 0.0) == (3, 2)  # shortest of the 5s, longest of the 1s


def test_rho_widens_both_bands():
    scores, lengths = [5.0, 4.5, 3.0, 1.5, 1.0], [10, 2, 5, 8, 3]
    # chosen band: score >= 0.68*5 + 0.32*1 = 3.72 -> {0, 1}; rejected band: <= 0.68*1 + 0.32*5 = 2.28 -> {3, 4}
    assert length_controlled_pair(scores, lengths, 0.32) == (1, 3)
    assert length_controlled_pair(scores, lengths, 0.0) == (0, 4)
    # rho=0.4: chosen band >= 0.6*5 + 0.4*1 = 3.4, rejected band <= 0.6*1 + 0.4*5 = 2.6
    assert length_controlled_pair([5.0, 3.5, 2.5, 1.0], [9, 1, 9, 2], 0.4) == (1, 2)
    assert length_controlled_pair([5.0, 3.5, 2.5, 1.0], [9, 1, 9, 2], 0.0) == (0, 3)


def test_length_and_score_ties():
    assert length_controlled_pair([5.0, 5.0, 1.0, 1.0], [4, 4, 6, 6], 0.0) == (0, 2)  # first index
    assert length_controlled_pair([5.0, 4.0, 1.0], [3, 3, 3], 0.32) == (0, 2)  # same length: better score
    assert length_controlled_pair([4.0, 4.0, 4.0], [1, 2, 3], 0.0) is None
    assert length_controlled_pair([4.0], [1], 0.0) is None


def test_rho_schedule_is_indexed_by_iteration_and_repeats_its_last_value():
    schedule = MetaRewardingOptions().rho
    assert [rho_at(schedule, t) for t in (1, 2, 3, 4, 6)] == [0.0, 0.32, 0.32, 0.4, 0.4]


@pytest.mark.parametrize("key, value", [("rho", [0.0, 0.5]), ("n_judgments", 0), ("bias_scope", "prompt"),
                                        ("score_min", 5)])
def test_bad_options_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        load_section(MetaRewardingOptions, {key: value}, "method.").check()


# ---------------------------------------------------------------- judging: parsing, dropping, counting
def test_unparseable_judgments_are_dropped_from_the_mean():
    judged = parse_judgments([{"text": t} for t in ["Right. Score: 5", "Score: 4.5", "no verdict", "Poor. Score: 3",
                                                    "Score: 9"]], 1, 5)
    assert [j["score"] for j in judged] == [5, None, None, 3, None]
    assert mean_score(judged) == 4.0
    assert mean_score(parse_judgments([{"text": "Score:"}], 1, 5)) is None


def completion(text: str) -> dict:
    return {"text": text, "num_tokens": len(text), "finished": True}


@pytest.fixture
def run(tmp_path):
    """A run on an engine with scripted models and an environment whose gold reward is a table."""
    cfg = load_config(None, overrides=["run.env=prompts"])
    engine = StubEngine(cfg, tmp_path / "run", {}, {})
    env = StubEnv([], [], {"5": 1.0, "1": 0.0, "7": 0.0})
    yield Run(engine, env, env.initial_models())
    engine.close()


@pytest.fixture
def parts():
    return MetaRewarding(MetaRewardingOptions(n_judgments=2, score_min=1, judge_prompt="builtin:tiny",
                                              meta_judge_prompt="builtin:tiny"))


def test_label_drops_and_counts_unparseable_judgments(run, parts, tmp_path):
    rows = [{"id": "a", "prompt": [{"role": "user", "content": "add 2+3"}], "family": "add", "answer": "5",
             "responses": [completion("5"), completion("1"), completion("7")]}]
    canned = [["Right. Score: 5", "Right. Score: 5"], ["Poor. Score: 2", "garbled"], ["oops", "Score: 0"]]
    seen = []

    def fake_generate(policy, requests, sampling, what):
        seen.extend(requests)
        assert sampling.n == 2 and policy == "pi"  # the policy judges, N times per response
        return [[completion(t) for t in texts] for texts in canned], {"new_tokens": 0, "unfinished": 0}

    run.engine.generate = fake_generate
    ctx = StageContext(run.engine.rd, 1, "estep_score", tmp_path / "stage", 0)
    ctx.dir.mkdir()
    rewards, metrics = parts.label(run, 1, Models("pi", "rm"), rows, ctx)
    assert seen[0]["prompt"][0]["content"] == "Rate: add 2+3 | 5"
    assert rewards == [[5.0, 2.0]]  # "7" had no valid judgment ("Score: 0" is outside 1-5): it leaves the row
    assert [r["text"] for r in rows[0]["responses"]] == ["5", "1"]
    assert metrics["judgments"] == 6 and metrics["judgments_unparseable"] == 3
    assert metrics["judge_parse_rate"] == 0.5 and metrics["responses_unjudged"] == 1
    assert metrics["judge_gold_exact_agreement"] == 2 / 3  # gold buckets 5 and 1; judged 5, 5, 2
    assert metrics["judge_gold_pair_accuracy"] == 1.0
    assert '"text": "7"' in (ctx.dir / "unjudged.jsonl").read_text()

    for resp, value in zip(rows[0]["responses"], rewards[0], strict=True):
        resp["reward"] = value
    rows.append({**rows[0], "id": "b", "responses": rows[0]["responses"][:1]})
    pairs, stats = parts.make_pairs(run, 1, rows)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("5", "1")]
    assert stats["pairs_built"] == 1 and stats["pairs_skipped_too_few_judged"] == 1
    assert stats["actor_pair_gold_accuracy"] == 1.0


def test_pair_accuracy_counts_judge_ties_as_half():
    golds = [("p", 1.0, 5.0), ("p", 0.5, 3.0), ("p", 0.0, 3.0), ("q", 1.0, 2.0), ("q", 0.0, 4.0), ("q", 0.0, 1.0)]
    # p: (1,.5) right, (1,0) right, (.5,0) judge tie = 1/2; q: (1,0 at 4) wrong, (1,0 at 1) right, (0,0) skipped
    assert pair_accuracy(golds) == pytest.approx(3.5 / 5)


# ---------------------------------------------------------------- judge pairs from a scripted meta-judge
def judged(text: str, scores: list[int | None]) -> dict:
    js = [{"text": f"J{s}. Score: {s}" if s is not None else "junk", "num_tokens": 10, "score": s} for s in scores]
    return {"text": text, "num_tokens": len(text), "judgments": js}


def score_of(judgment: str) -> int:
    return int(re.search(r"Score: (\d)", judgment).group(1))


def rows_for_battle() -> list[dict]:
    task = {"family": "reverse", "answer": "detupsid"}
    return [{"id": "a", "prompt": [{"role": "user", "content": "q"}], **task,
             "responses": [judged("low variance", [3, 3, 4]), judged("disputed", [1, 4, 5, 4, None])]},
            {"id": "b", "prompt": [{"role": "user", "content": "r"}], **task,
             "responses": [judged("agreed", [2, 2, 2])]}]


def test_judge_pair_is_best_vs_worst_rated_judgment_of_the_most_disputed_response():
    calls = []

    def prefers_four(requests):  # a consistent meta-judge: the judgment nearer a score of 4 wins
        calls.extend(requests)
        return [f"Winner: {'A' if abs(score_of(a) - 4) < abs(score_of(b) - 4) else 'B'}" for _, _, a, b in requests]

    pairs, stats = build_judge_pairs(rows_for_battle(), prefers_four, lambda p, y: [{"role": "user", "content": y}],
                                     MetaRewardingOptions())
    assert {c[1] for c in calls} == {"disputed"}
    assert len(calls) == 3 * 2  # distinct parsed judgments 1, 4, 5: every ordered pair
    assert len(pairs) == 1
    assert (pairs[0]["chosen_score"], pairs[0]["rejected_score"]) == (4, 1)
    assert pairs[0]["prompt"] == [{"role": "user", "content": "disputed"}] and pairs[0]["source"] == "judge"
    assert stats["judge_pairs_built"] == 1 and stats["judge_pairs_skipped_no_variance"] == 1
    assert stats["meta_parse_rate"] == 1.0


def test_a_meta_judge_that_always_answers_a_teaches_nothing():
    pairs, stats = build_judge_pairs(rows_for_battle(), lambda reqs: ["Winner: A"] * len(reqs),
                                     lambda p, y: y, MetaRewardingOptions())
    assert pairs == [] and stats["judge_pairs_skipped_no_winner"] == 1
    assert stats["meta_first_position_win_rate"] == 1.0


def test_unparseable_verdicts_are_dropped_and_long_chosen_judgments_too():
    def half_garbled(requests):
        return [("Winner: " + ("A" if score_of(a) > score_of(b) else "B")) if i % 2 else "?"
                for i, (_, _, a, b) in enumerate(requests)]

    pairs, stats = build_judge_pairs(rows_for_battle(), half_garbled, lambda p, y: y, MetaRewardingOptions())
    assert stats["meta_verdicts"] == 6 and stats["meta_verdicts_unparseable"] == 3
    assert len(pairs) == 1
    short = MetaRewardingOptions(max_chosen_judgment_tokens=5)
    pairs, stats = build_judge_pairs(rows_for_battle(), half_garbled, lambda p, y: y, short)
    assert pairs == [] and stats["judge_pairs_skipped_chosen_too_long"] == 1


def test_judge_pairs_join_the_actor_pairs_only_in_iterations_one_and_two(run, parts):
    parts.meta_judge = lambda run_, t, policy, reqs, seed: [
        f"Winner: {'A' if score_of(a) > score_of(b) else 'B'}" for _, _, a, b in reqs]

    def scored(ctx):
        write_jsonl(ctx.dir / "scored.jsonl", rows_for_battle())
        return {"scored": ctx.rel(ctx.dir / "scored.jsonl")}, {}

    sources = {}
    for t in (1, 2, 3):
        run.engine.stage(t, "estep_score", scored)
        sources[t] = [p["source"] for p in parts.judge_pairs(run, None, t, Models("pi", "rm"))]
    assert sources == {1: ["judge"], 2: ["judge"], 3: []}
    assert run.engine.rd.is_done(2, "meta_judge") and not run.engine.rd.stage_dir(3, "meta_judge").exists()


def test_outside_the_world_the_judge_prompt_must_be_given(tmp_path):
    spec = METHODS.get("meta-rewarding")
    with pytest.raises(InputError, match="method.judge_prompt"):
        spec.method(load_config("paper"))
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Judge {prompt} -> {response}. End with Score: k")
    meta = tmp_path / "meta.txt"
    meta.write_text("{prompt} {response} A={judgment_a} B={judgment_b}")
    cfg = load_config("paper", overrides=[f"method.judge_prompt={json.dumps(str(prompt))}",
                                          f"method.meta_judge_prompt={json.dumps(str(meta))}"])
    method = spec.method(cfg)
    assert method.label.__self__.judge_prompt("hi", "yo")[0]["content"] == "Judge hi -> yo. End with Score: k"


# ---------------------------------------------------------------- end to end on the gold world
def digest(folder: str | Path) -> str:
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_meta_rewarding_runs_on_the_gold_world(small_world, small_world_overrides, tmp_path):
    world = small_world
    from mt.progress import QUIET
    from reproduce.recipes import load_recipe, plan
    from reproduce.tables import run_cell

    # The small world holds 200 held-out prompts: more samples and epochs give the judge SFT its ~150 steps.
    user = [*small_world_overrides, "data.max_prompts=60", "method.eft_samples=2", "method.eft_epochs=4"]
    (cell,) = plan(load_recipe("tiny"), ["meta-rewarding"], 1, tmp_path, user)
    result = run_cell(cell, QUIET)
    assert result.iterations_done == 3 and not result.stopped

    def done(t, stage):
        return json.loads(Path(result.run_dir, f"iter_{t}", stage, "DONE.json").read_text())["metrics"]

    sft = json.loads(Path(result.run_dir, "judge_sft", "DONE.json").read_text())
    judge_model = Path(result.run_dir, sft["result"]["policy"])
    final = json.loads(Path(result.run_dir, "summary.json").read_text())["final_policy"]
    assert len({digest(world.policy), digest(judge_model), digest(final)}) == 3  # SFT and DPO both moved it
    for t in (1, 2, 3):
        score = done(t, "estep_score")
        assert 0 < score["judge_parse_rate"] <= 1 and 0 <= score["judge_gold_exact_agreement"] <= 1
        assert done(t, "estep_pairs")["pairs_built"] > 0
    assert done(1, "estep_score")["judge_parse_rate"] > 0.5  # the SFT taught the output format
    assert done(1, "meta_judge")["meta_verdicts"] > 0 and "judge_pairs_built" in done(2, "meta_judge")
    assert not Path(result.run_dir, "iter_3", "meta_judge").exists()
    assert done(3, "estep_train")["dpo_judge_pairs"] == 0 and done(3, "estep_train")["dpo_actor_pairs"] > 0
    assert not list(Path(result.run_dir).glob("iter_*/mstep_*"))  # the RM is never trained
    assert all(done(t, "select")["selection_enabled"] is False for t in (1, 2, 3))  # the last checkpoint is kept
    assert 0 <= result.final["gold_mean"] <= 1
