"""Arena-Hard adapter: scores against independent computations, verdict parsing and drop rules, the
judgment file shape both ways, and an end-to-end run with a tiny policy and a scripted judge.

Offline: the questions, baseline answers, judge configs and prompts are small fixtures written here
(our own wording, in arena-hard-auto's file shapes), never the official ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_fixtures import SYSTEM, TEMPLATE_V2
from bench_fixtures import arena_repo as _write_repo
from bench_fixtures import arena_verdict as _scripted

from bench import arena_hard as ah
from bench.judges import CallableJudge, JudgeRequest
from bench.metrics import arena_hard as ahm
from bench.registry import BENCHMARKS, BenchRequest, get
from mt.config import ConfigError
from mt.records import InputError

LABELS = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]


def _record(uid, g1, g2, category="hard_prompt"):
    return {"uid": uid, "category": category, "model": "m", "games": [
        None if g1 is None else {"score": g1}, None if g2 is None else {"score": g2}]}


def _synthetic(n=40, seed=3):
    rng = np.random.default_rng(seed)
    return [_record(str(i), LABELS[rng.integers(5)], LABELS[rng.integers(5)]) for i in range(n)]


def _by_hand(records):
    """Wins, ties and games of the model, strong verdicts x3, read straight off the labels."""
    wins = ties = games = 0
    for r in records:
        for g, game in enumerate(r["games"]):
            label = game["score"]
            weight = 3 if ">>" in label else 1
            model_won = label.startswith("B") if g == 0 else label.startswith("A")
            games += weight
            ties += weight * (label == "A=B")
            wins += weight * (model_won and label != "A=B")
    return wins, ties, games


# ---------------------------------------------------------------------------------------------- scores


def test_v01_bradley_terry_score_is_the_weighted_win_rate():
    records = _synthetic()
    wins, ties, games = _by_hand(records)
    battles, drops = ahm.battles_v01(records)
    assert len(battles) == games and not drops
    scores = ahm.score_v01([b["outcome"] for b in battles])
    assert scores["score"] == pytest.approx(100 * (wins + ties / 2) / games, abs=1e-5)
    assert scores["elo"] == pytest.approx(1000 + 400 * math.log10((wins + ties / 2) / (games - wins - ties / 2)),
                                          abs=1e-3)


def test_v01_ci_matches_an_independent_bootstrap_with_pandas_rows_and_seed_42():
    outcomes = [b["outcome"] for b in ahm.battles_v01(_synthetic())[0]]
    np.random.seed(42)  # the official module seeds numpy's global state and samples rows with pandas
    frame = pd.DataFrame({"outcome": outcomes})
    elos = []
    for _ in range(100):
        p = frame.sample(frac=1.0, replace=True)["outcome"].mean()
        elos.append(1000 + 400 * math.log10(p / (1 - p)))
    low, high = (100 / (1 + 10 ** ((1000 - np.percentile(elos, q)) / 400)) for q in (2.5, 97.5))
    scores = ahm.score_v01(outcomes)
    assert scores["ci_low"] == pytest.approx(low, abs=1e-4)
    assert scores["ci_high"] == pytest.approx(high, abs=1e-4)
    assert scores["ci_low"] < scores["score"] < scores["ci_high"]


def test_v01_sweep_scores_100_without_crashing():
    scores = ahm.score_v01([1.0] * 9)
    assert scores["score"] == 100.0 and scores["ci_low"] == 100.0


def test_v20_score_is_the_mean_of_bootstrap_means():
    records = _synthetic(seed=5)
    battles, _ = ahm.battles_v20(records)
    outcomes = [b["outcome"] for b in battles]
    np.random.seed(42)
    frame = pd.DataFrame({"model": "m", "scores": outcomes})
    means = [frame.groupby("model").sample(frac=1.0, replace=True)["scores"].mean() for _ in range(100)]
    scores = ahm.score_v20(outcomes)
    assert scores["score"] == pytest.approx(100 * np.mean(means))
    assert scores["ci_low"] == pytest.approx(100 * np.quantile(means, 0.05))
    assert scores["ci_high"] == pytest.approx(100 * np.quantile(means, 0.95))
    wins, ties, games = _by_hand(records)
    assert np.mean(outcomes) == pytest.approx((wins + ties / 2) / games)


def test_v20_battle_order_puts_game_two_first():
    battles, _ = ahm.battles_v20([_record("q", "A>>B", "B>A")])
    assert [b["outcome"] for b in battles] == [0.0, 0.0, 0.0, 0.0]
    battles, _ = ahm.battles_v20([_record("q", "A=B", "A>>B")])
    assert [b["outcome"] for b in battles] == [1.0, 1.0, 1.0, 0.5]


def test_style_features_by_hand():
    model = {"token_len": 30, "header_count": {"h1": 1, "h2": 1}, "list_count": {"ordered": 3}, "bold_count": {}}
    base = {"token_len": 10, "header_count": {"h1": 0}, "list_count": {"ordered": 0}, "bold_count": {"**": 1}}
    other = {"token_len": 10, "header_count": {}, "list_count": {}, "bold_count": {}}
    raw_len = [(30 - 10) / 40, 0.0]
    header = [(2 / 31 - 0) / (2 / 31 + 1), 0.0]
    feats = ahm.style_features([model, other], [base, other])
    for col, raw in ((0, raw_len), (1, header)):
        z = (np.array(raw) - np.mean(raw)) / np.std(raw, ddof=1)
        assert feats[:, col] == pytest.approx(z)


def test_style_control_without_style_differences_is_plain_bradley_terry():
    """With no feature varying, the model's BT win probability on each bootstrap is that bootstrap's mean."""
    outcomes = [b["outcome"] for b in ahm.battles_v20(_synthetic(30, seed=7))[0]]
    meta = [{"token_len": 5, "header_count": {}, "list_count": {}, "bold_count": {}}] * len(outcomes)
    sc = ahm.score_style_control(outcomes, ahm.style_features(meta, meta), "both", rounds=20)
    means = np.asarray(outcomes)[ahm.bootstrap_indices(len(outcomes), 20, 42)].mean(axis=1)
    assert sc["score"] == pytest.approx(100 * np.quantile(means, 0.5), abs=0.05)
    assert sc["ci_low"] == pytest.approx(100 * np.quantile(means, 0.05), abs=0.05)


def test_style_control_moves_the_score_when_length_explains_the_wins():
    rng = np.random.default_rng(0)
    longer = rng.random(300) < 0.5
    outcomes = np.where(longer, rng.random(300) < 0.85, rng.random(300) < 0.35).astype(float)
    meta_m = [{"token_len": 200 if x else 50, "header_count": {}, "list_count": {}, "bold_count": {}} for x in longer]
    meta_b = [{"token_len": 100, "header_count": {}, "list_count": {}, "bold_count": {}}] * 300
    sc = ahm.score_style_control(outcomes, ahm.style_features(meta_m, meta_b), "length", rounds=8)
    assert sc["style_coefs"]["length"] > 0.5
    assert abs(sc["score"] - 100 * outcomes.mean()) > 1.0


# ---------------------------------------------------------------------------------------------- parsing


def test_v01_parsing_is_case_sensitive_and_drops_conflicts():
    pattern = r"\[\[([AB<>=]+)\]\]"
    assert ah.parse_v01("so [[A>B]] and again [[A>B]]", pattern) == ("A>B", "ok")
    assert ah.parse_v01("lower [[a>b]]", pattern) == (None, "missing")
    assert ah.parse_v01("[[A>B]] no, [[B>A]]", pattern) == (None, "conflict")
    assert ah.parse_v01("[[A<B]]", pattern) == ("A<B", "unknown")


def test_v20_parsing_upper_cases_falls_back_and_takes_the_last():
    patterns = [r"\[\[([AB<>=]+)\]\]", r"\[([AB<>=]+)\]"]
    assert ah.parse_v20("verdict [[a>b]]", patterns) == ("A>B", "ok")
    assert ah.parse_v20("[A>B] first, then [[B>A]]", patterns) == ("B>A", "ok")
    assert ah.parse_v20("[[A>B]] then [[B>>A]]", patterns) == ("B>>A", "ok")
    assert ah.parse_v20("only [B=A]", patterns) == ("B=A", "ok")
    assert ah.parse_v20("no label", patterns) == (None, "missing")
    assert ah.parse_v20("[[AB]]", patterns) == ("AB", "unknown")


def _config(version):
    patterns = [r"\[\[([AB<>=]+)\]\]"] + ([r"\[([AB<>=]+)\]"] if version == "v2.0" else [])
    return ah.JudgeConfig([TEMPLATE_V2], patterns, {"*": SYSTEM}, attempts=2 if version == "v0.1" else 1)


def _items(n):
    return [(ah.Question(f"q{i}", "hard_prompt", f"question {i}"), f"base {i}", f"ans {i}") for i in range(n)]


def test_malformed_v01_verdicts_are_counted_with_one_follow_up_and_per_game_drops():
    first = {"q0": ("[[B>A]]", "[[A>B]]"), "q1": ("thinking...", "[[A=B]]"), "q2": ("[[A>B]] or [[B>A]]", "[[b>a]]"),
             "q3": ("[[A<B]]", "nothing")}
    second = {"q1": "fine: [[B>>A]]", "q2": "still none", "q3": "none again"}

    def fn(r: JudgeRequest) -> str:
        uid = "q" + r.field("question").split()[-1]
        if r.messages[-1][0] == "user" and len(r.messages) > 2:
            return second[uid]
        return first[uid][0 if r.field("answer_a").startswith("base") else 1]

    judge = CallableJudge(fn)
    games, extra = ah.judge_games(judge, _config("v0.1"), "v0.1", _items(4), ah.QUIET)
    assert extra["followups"] == 3  # q1 game 1, q2 game 2, q3 game 2
    assert [g["score"] for g in games[1]] == ["B>>A", "A=B"]  # the follow-up's label, parsed on both turns
    assert games[1][0]["judgment"] == "\nthinking...\nfine: [[B>>A]]"
    records = [{"uid": f"q{i}", "category": "hard_prompt", "games": g} for i, g in enumerate(games)]
    battles, drops = ahm.battles_v01(records)
    report = ahm.parse_report(records, "v0.1", drops, extra)
    assert report["unparseable"] == 4 and report["conflicting_labels"] == 1 and report["unknown_label"] == 1
    assert report["missing_label"] == 2 and drops["dropped_games"] == 4
    assert len(battles) == 1 + 1 + 3 + 1  # q0 both games; q1 game 1 strong (x3) and game 2


def test_malformed_v20_verdicts_drop_the_whole_question():
    verdicts = {"q0": ("[[A>B]]", "[[a>b]]"), "q1": ("no label", "[[A>B]]"), "q2": ("[[AB]]", "[[A=B]]")}
    judge = CallableJudge(lambda r: verdicts["q" + r.field("question").split()[-1]][
        0 if r.field("answer_a").startswith("base") else 1])
    games, extra = ah.judge_games(judge, _config("v2.0"), "v2.0", _items(3), ah.QUIET)
    assert judge.calls == 6 and extra["followups"] == 0
    records = [{"uid": f"q{i}", "category": "hard_prompt", "games": g} for i, g in enumerate(games)]
    battles, drops = ahm.battles_v20(records)
    report = ahm.parse_report(records, "v2.0", drops, extra)
    assert drops["dropped_questions"] == 2 and report["unparseable"] == 2
    assert [b["uid"] for b in battles] == ["q0", "q0"] and [b["outcome"] for b in battles] == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------- judgment files


def _games(labels):
    return [{"score": s, "judgment": f"text {s}", "status": "ok",
             "messages": (("system", SYSTEM), ("user", "prompt"))} for s in labels]


@pytest.mark.parametrize("shape", ["new", "old"])
def test_judgment_file_round_trip_and_official_reader(tmp_path, shape):
    questions = [ah.Question(f"q{i}", "hard_prompt", f"p{i}") for i in range(4)]
    labels = [("A>B", "B>A"), ("A>>B", "A=B"), ("B>>A", None), ("A=B", "A>B")]
    rows = [ah.judgment_row(shape, q, "tiny", "o3-mini-2025-01-31", "judge", _games(ls))
            for q, ls in zip(questions, labels, strict=True)]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    back = ah.read_judgments(path)
    assert [[g["score"] for g in r["games"]] for r in back] == [list(ls) for ls in labels]
    assert back[0]["games"][0]["judgment"] == "text A>B"
    data = pd.read_json(path, lines=True)  # what both official show_result.py versions start from
    key = "uid" if shape == "new" else "question_id"
    assert {key, "model", "games"} <= set(data.columns)
    nulls = data.games.map(lambda x: x[0] is None or x[1] is None or x[0]["score"] is None or x[1]["score"] is None)
    assert nulls.tolist() == [False, False, True, False]


def _official_v20_file(path: Path, labels):
    """Lines as arena-hard-auto's HEAD gen_judgment.py writes them (a null game included)."""
    rows = []
    for i, (g1, g2) in enumerate(labels):
        games = [None if g is None else {"score": g, "judgment": {"answer": f"... [[{g}]]"},
                                         "prompt": [{"role": "user", "content": "x"}]} for g in (g1, g2)]
        rows.append({"uid": f"u{i}", "category": "hard_prompt", "judge": "gpt-4.1", "model": "other",
                     "baseline": "o3-mini-2025-01-31", "games": games})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_scores_a_judgment_file_made_by_the_official_tool(tmp_path):
    labels = [("A>B", "A>B"), ("B>A", "A>>B"), ("A=B", None), ("B>>A", "B<A"), ("A>>B", "B>A")]
    path = tmp_path / "data" / "arena-hard-v2.0" / "model_judgment" / "gpt-4.1" / "other.jsonl"
    _official_v20_file(path, labels)
    result = ah.run(BenchRequest(model="other", out=tmp_path / "out", options={
        "judgments": str(path), "version": "v2.0"}), ah.QUIET)
    # by hand: per kept question, game 2 score of A then 1 - game 1 score of A (strong x3)
    outcomes = [1, 0] + [1, 1, 1, 1] + [1, 1, 1, 1] + [0, 0, 0, 0]
    assert result["n_questions"] == 5 and result["parse"]["dropped_questions"] == 1
    assert result["scores"]["battles"] == len(outcomes)
    assert result["scores"]["score"] == pytest.approx(ahm.score_v20(outcomes)["score"])
    assert json.loads(Path(result["path"]).read_text())["scores"]["score"] == result["scores"]["score"]


def test_unknown_option_and_missing_v01_data_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="unknown --option 'colour'"):
        get("arena-hard").parse_options({"colour": "red"})
    with pytest.raises(ConfigError, match="--option style_control='fancy': expected one of none, length"):
        get("arena-hard").parse_options({"style_control": "fancy"})
    with pytest.raises(ConfigError, match="--option rounds=0: expected >= 1"):
        get("arena-hard").parse_options({"rounds": "0"})
    with pytest.raises(InputError, match="no package ships"):
        ah.locate_data(None, "v0.1")
    with pytest.raises(InputError, match="judge_config"):
        ah.load_judge_config(None, "v0.1")


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("version", ["v2.0", "v0.1"])
def test_end_to_end_with_a_tiny_policy_and_the_cache_on_rerun(tmp_path, tiny_models, version):
    policy, _ = tiny_models
    repo = _write_repo(tmp_path / "repo", version)
    judge = CallableJudge(_scripted, identity="scripted")

    def request():
        return BenchRequest(model=str(policy), out=tmp_path / "out", data=str(repo), judge=judge, max_new_tokens=6,
                            batch_size=4, options={"token_counter": "policy"})

    assert "arena-hard" in BENCHMARKS
    result = BENCHMARKS.get("arena-hard").run(request(), ah.QUIET)
    calls = judge.calls
    assert result["version"] == version and not result["partial"] and result["n_questions"] == 4
    if version == "v2.0":
        # add: 3 + 3 losses; sort, say hi: 1 + 1 wins each; reverse: both games null -> question dropped
        assert calls == 8 and result["parse"]["dropped_questions"] == 1
        assert result["scores"]["score"] == pytest.approx(ahm.score_v20([0] * 6 + [1] * 4)["score"])
    else:
        # reverse: no label twice -> one follow-up each, answered A=B (a tie in both games)
        assert calls == 10 and result["parse"]["followups"] == 2 and result["parse"]["unparseable"] == 0
        assert result["scores"]["score"] == pytest.approx(100 * (4 + 1) / 12, abs=1e-4)
    judged = ah.read_judgments(result["judgments"])
    assert len(judged) == 4 and all(len(r["games"]) == 2 for r in judged)
    answers = ah.load_answers(Path(result["answers"]))
    assert len(answers) == 4 and all(a["metadata"]["token_len"] >= 0 for a in answers.values())
    # This run and the baseline (50 by definition); the paper's rows are the CLI's to add.
    assert {row["source"] for row in result["leaderboard"]} == {"this run", "the baseline (50 by definition)"}

    again = ah.run(request(), ah.QUIET)
    assert judge.calls == calls  # every verdict came from the cache
    assert again["judge"]["judge_calls"] == 0 and again["judge"]["cache_hits"] == calls
    assert again["generation"]["reused"] == 4 and again["generation"]["generated"] == 0
    assert again["scores"] == result["scores"]


def test_style_control_end_to_end_from_the_written_answers(tmp_path, tiny_models):
    policy, _ = tiny_models
    repo = _write_repo(tmp_path / "repo", "v2.0", n=5)
    judge = CallableJudge(_scripted, identity="scripted")
    result = ah.run(BenchRequest(model=str(policy), out=tmp_path / "out", data=str(repo), judge=judge,
                                 max_new_tokens=6, options={"token_counter": "policy", "style_control": "both",
                                                            "rounds": "10"}), ah.QUIET)
    sc = result["scores"]["style_controlled"]
    assert sc["rounds"] == 10 and 0 <= sc["score"] <= 100 and set(sc["style_coefs"]) == set(ahm.STYLE_FEATURES)
