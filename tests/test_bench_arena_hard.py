"""Arena-Hard adapter: scores against independent computations, verdict parsing and drop rules, the
judgment file shape both ways, and an end-to-end run with a tiny policy and a scripted judge.

Offline: the questions, baseline answers, judge configs and prompts are small fixtures written here
(our own wording, in arena-hard-auto's file shapes), never the official ones.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the clipped Elo of a swept round overflows by design, silently
        assert ahm.elo_to_score(-1e9) == 0.0 and ahm.elo_to_score(1e9) == 100.0


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


def test_battles_carry_uid_and_category_and_read_only_the_two_games():
    """Both official readers take game 1 and game 2; anything after them is not a game."""
    record = {"uid": "q7", "category": "coding", "games": [{"score": "B>A"}, {"score": "B>>A"}, {"score": "A>>B"}]}
    battles, drops = ahm.battles_v01([record])
    won, lost = {"uid": "q7", "category": "coding", "outcome": 1.0}, {"uid": "q7", "category": "coding", "outcome": 0.0}
    assert battles == [won, lost, lost, lost] and drops == {}  # game 1 the model won (B); game 2 the baseline, x3
    record["games"][2] = None  # HEAD's load_judgments checks games[0] and games[1] only
    assert ahm.battles_v20([record]) == ([lost, lost, lost, won], {})


def test_empty_and_one_battle_results_and_their_labels():
    none = {"score": None, "ci_low": None, "ci_high": None, "battles": 0}
    assert ahm.score_v01([]) == ahm.score_v20([]) == ahm.score_style_control([], np.zeros((0, 4))) == none
    v20 = ahm.score_v20([1.0, 0.5, 0.0, 1.0], rounds=3, seed=9)
    means = np.array([1.0, 0.5, 0.0, 1.0])[np.random.RandomState(9).randint(0, 4, size=(3, 4))].mean(axis=1)
    assert v20 == {"score": pytest.approx(100 * means.mean()), "ci_low": pytest.approx(100 * np.quantile(means, 0.05)),
                   "ci_high": pytest.approx(100 * np.quantile(means, 0.95)), "ci_level": 0.90,
                   "method": "mean of bootstrap means (196f6b8)", "battles": 4, "rounds": 3, "seed": 9}
    v01 = ahm.score_v01([1.0, 0.0, 1.0, 0.5], rounds=4, seed=3)
    assert {k: v for k, v in v01.items() if k not in ("score", "ci_low", "ci_high", "elo")} == {
        "ci_level": 0.95, "method": "bradley-terry (0489bf3)", "battles": 4, "rounds": 4, "seed": 3}
    assert v01["elo"] == pytest.approx(1000 + 400 * math.log10(2.5 / 1.5), abs=1e-3)
    assert ahm.score_v01([0.0] * 3, rounds=2)["elo"] is None  # infinite: not valid in strict JSON
    one = ahm.score_style_control([1.0], np.zeros((1, 4)), "length", rounds=2)
    assert one["battles"] == 1 and one["score"] > 50  # one battle is enough to fit: the model won it


def _official_fit(x, y, *, stable=False):
    """arena-hard-auto 196f6b8's fit_pairwise_model("bt"): BTModel at 0.5, LBFGS lr 0.1, 50 iterations, tol 1e-9.

    Its bt_loss is -(log p * y + log(1 - p) * (1 - y)).sum(); ``stable`` writes the same sum as
    binary_cross_entropy_with_logits, whose float32 rounding LBFGS does not amplify into a different path.
    """
    import torch

    logits = torch.nn.Parameter(torch.nn.init.constant_(torch.empty(x.shape[1]), 0.5))
    optimizer = torch.optim.LBFGS([logits], lr=0.1, max_iter=50, tolerance_grad=1e-9, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        if stable:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ logits, y, reduction="sum")
        else:
            p = torch.sigmoid(x @ logits)
            loss = -(torch.log(p) * y + torch.log(1.0 - p) * (1.0 - y)).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return logits.detach()


def test_bt_fit_is_the_official_lbfgs_fit():
    """Fifty LBFGS steps at lr 0.1 stop short of the optimum, so the fit's settings show in its coefficients."""
    import torch

    rng = np.random.default_rng(0)
    f = rng.normal(size=(40, 4))
    y = np.where(rng.random(40) < 0.2, 0.5, (rng.random(40) < 1 / (1 + np.exp(-0.3 - f[:, 0]))).astype(float))
    x = torch.cat([torch.tensor([[1.0, -1.0]]).expand(40, 2), torch.tensor(f, dtype=torch.float32)], dim=1)
    y = torch.tensor(y, dtype=torch.float32)
    coefs = ahm.fit_bt_features(x, y)
    assert coefs.tolist() == pytest.approx(_official_fit(x, y).tolist(), abs=2e-4)
    assert coefs.tolist() == pytest.approx(_official_fit(x, y, stable=True).tolist(), abs=1e-6)
    assert coefs[0] + coefs[1] == pytest.approx(1.0)  # model and baseline move opposite ways from 0.5 each


def test_style_control_bootstraps_and_summaries_with_a_stand_in_fit(monkeypatch):
    """The defaults (100 rounds, seed 42, length and markdown), the rows each fit gets, and the medians and 5/95
    quantiles of sigmoid(model - baseline), checked with a fit that returns known coefficients."""
    import torch

    rng = np.random.default_rng(4)
    outcomes, features = [1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5], rng.normal(size=(7, 4))
    coefs = rng.normal(size=(100, 6))
    calls = []

    def stand_in(x, y):
        assert torch.get_num_threads() == 1  # each small fit runs on one thread
        calls.append((x.clone(), y.clone()))
        return torch.tensor(coefs[len(calls) - 1][: x.shape[1]], dtype=torch.float32)

    monkeypatch.setattr(ahm, "fit_bt_features", stand_in)
    threads = torch.get_num_threads()
    sc = ahm.score_style_control(outcomes, features)
    assert torch.get_num_threads() == threads
    idx = np.random.RandomState(42).randint(0, 7, size=(100, 7))
    assert len(calls) == 100
    for (x, y), rows in zip(calls, idx, strict=True):
        assert x.dtype == y.dtype == torch.float32 and x.shape == (7, 6)
        assert x[:, :2].tolist() == [[1.0, -1.0]] * 7
        assert x[:, 2:].numpy() == pytest.approx(features[rows], abs=1e-6)
        assert y.tolist() == [outcomes[i] for i in rows]
    c = coefs.astype(np.float32).astype(float)
    probs = 1 / (1 + np.exp(c[:, 1] - c[:, 0]))
    assert sc["score"] == pytest.approx(100 * np.median(probs), abs=1e-4)
    assert sc["ci_low"] == pytest.approx(100 * np.quantile(probs, 0.05), abs=1e-4)
    assert sc["ci_high"] == pytest.approx(100 * np.quantile(probs, 0.95), abs=1e-4)
    assert sc["style_coefs"] == pytest.approx(dict(zip(ahm.STYLE_FEATURES, np.median(c[:, 2:], axis=0), strict=True)), abs=1e-6)
    assert sc["ci_level"] == 0.90 and sc["battles"] == 7 and sc["rounds"] == 100 and sc["seed"] == 42
    assert sc["method"] == "style-controlled bradley-terry, median of bootstraps (196f6b8), control=both"

    calls.clear()
    sc = ahm.score_style_control(outcomes, features, "markdown", rounds=3, seed=5)
    assert [x.shape for x, _ in calls] == [(7, 5)] * 3 and set(sc["style_coefs"]) == {"header", "list", "bold"}
    assert calls[0][0][:, 2:].numpy() == pytest.approx(features[np.random.RandomState(5).randint(0, 7, 7)][:, 1:])


def test_style_vector_reads_counts_as_dicts_or_numbers_and_missing_as_zero():
    """HEAD's style tensor sums a count dict and takes a plain number as it is."""
    meta = {"token_len": 7, "header_count": {"h1": 1, "h2": 2}, "list_count": 4, "bold_count": {"**": 5, "__": 1}}
    assert ahm.style_vector(meta) == [7.0, 3.0, 4.0, 6.0]
    assert ahm.style_vector({"token_len": 3}) == [3.0, 0.0, 0.0, 0.0]


def _meta(tokens, header=0, lists=0, bold=0):
    return {"token_len": tokens, "header_count": {"h1": header}, "list_count": {"ordered": lists},
            "bold_count": {"**": bold}}


def test_style_features_of_three_battles_by_hand():
    """Every column by hand (two battles would z-score any pair to +-0.71); a 0 + 0 token battle has length 0."""
    model = [_meta(9, header=1, bold=2), _meta(0), _meta(19, lists=4)]
    base = [_meta(11, lists=3, bold=2), _meta(0), _meta(1, header=1, bold=1)]
    raw = np.array([
        # length (m - b) / (m + b); densities count / (tokens + 1) combined as (m - b) / (m + b + 1)
        [-2 / 20, (0.1 - 0) / 1.1, (0 - 0.25) / 1.25, (0.2 - 1 / 6) / (0.2 + 1 / 6 + 1)],
        [0.0, 0.0, 0.0, 0.0],
        [18 / 20, (0 - 0.5) / 1.5, (0.2 - 0) / 1.2, (0 - 0.5) / 1.5],
    ])
    junk = [np.full(3, 7.0) for _ in range(8)]
    del junk  # numpy reuses freed small buffers: the 0 + 0 battle's length must be written, not inherited
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feats = ahm.style_features(model, base)
    assert feats == pytest.approx((raw - raw.mean(axis=0)) / raw.std(axis=0, ddof=1), abs=1e-12)


def test_style_features_are_zero_where_nothing_varies_without_numpy_warnings():
    """A constant column gives 0 (length 0.1 here: not exact in binary, so neither is its mean), beside one that
    varies (headers: densities 0, 1/2, 1, features 0, 1/3, 1/2); so does a single battle."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feats = ahm.style_features([_meta(11, header=h) for h in (0, 6, 12)], [_meta(9)] * 3)
        single = ahm.style_features([_meta(30, header=2)], [_meta(10)])
    raw = np.array([0.0, 1 / 3, 1 / 2])
    assert feats[:, [0, 2, 3]].tolist() == [[0.0] * 3] * 3 and single.tolist() == [[0.0] * 4]
    assert feats[:, 1] == pytest.approx((raw - raw.mean()) / raw.std(ddof=1), abs=1e-12)


def test_parse_report_counts_by_hand():
    """Games read from the official tool carry no status: a label is ok, no label missing; ours say why."""
    records = [{"games": [{"score": "A>B"}, {"score": "A<<B"}]},  # ok; a v2.0 label that v0.1 does not know
               {"games": [None, {"score": None}]},  # a null game; no label
               {"games": [{"score": None, "status": "conflict"}, {"score": None, "status": "unknown"}]},
               {"games": [{"score": "B>A", "status": "ok"}]}]
    v01 = ahm.parse_report(records, "v0.1", Counter(dropped_games=5), Counter(followups=2))
    assert v01 == {"rules": "v0.1", "games": 7, "unparseable": 5, "missing_label": 2, "conflicting_labels": 1,
                   "unknown_label": 2, "followups": 2, "dropped_games": 5, "dropped_questions": 0}
    v20 = ahm.parse_report(records, "v2.0", Counter(dropped_questions=3), Counter())
    assert v20 == {"rules": "v2.0", "games": 7, "unparseable": 4, "missing_label": 2, "conflicting_labels": 1,
                   "unknown_label": 1, "followups": 0, "dropped_games": 0, "dropped_questions": 3}


def _questions():
    return [_record("q0", "B>A", "A>B"), _record("q1", "A>>B", "A=B", "creative_writing"),
            _record("q2", None, "A>B")]


def test_score_records_per_version_by_hand():
    """v0.1 pools every question (its BT score is the weighted win rate); v2.0 scores each category and drops
    a question with a null game, here with the defaults: weight 3, 100 rounds, seed 42."""
    v01, drops = ahm.score_records(_questions(), "v0.1", rounds=5, seed=3)
    # q0: the model wins both games; q1: the baseline wins strongly (x3), then a tie; q2: game 1 null, a win
    assert list(v01) == ["arena-hard-v0.1"] and drops == {"dropped_games": 1}
    assert v01["arena-hard-v0.1"]["score"] == pytest.approx(100 * 3.5 / 7, abs=1e-5)
    assert v01["arena-hard-v0.1"] == ahm.score_v01([1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 1.0], 5, 3)
    light, _ = ahm.score_records(_questions(), "v0.1", weight=2, rounds=5, seed=1)
    assert light["arena-hard-v0.1"]["score"] == pytest.approx(100 * 3.5 / 6, abs=1e-5)
    v20, drops = ahm.score_records(_questions(), "v2.0")
    assert list(v20) == ["creative_writing", "hard_prompt"] and drops == {"dropped_questions": 1}
    assert v20["hard_prompt"] == ahm.score_v20([1.0, 1.0], 100, 42) and v20["hard_prompt"]["score"] == 100.0
    assert v20["creative_writing"] == ahm.score_v20([0.5, 0.0, 0.0, 0.0], 100, 42)  # game 2 first
    assert "style_controlled" not in v20["hard_prompt"]


def test_score_records_style_control_reads_each_battles_answers():
    answers = {("q0", "hard_prompt"): (_meta(40, header=1), _meta(10)),
               ("q1", "creative_writing"): (_meta(12, bold=3), _meta(30, lists=2)),
               ("q2", "hard_prompt"): (_meta(5), _meta(25, header=2))}
    with pytest.raises(ValueError, match="^style control needs the answers' metadata$"):
        ahm.score_records(_questions(), "v0.1", style_control="length")
    scores, _ = ahm.score_records(_questions(), "v0.1", rounds=3, seed=7, style_control="both",
                                  metadata=lambda uid, category: answers[(uid, category)])
    order = ["q0", "q0", "q1", "q1", "q1", "q1", "q2"]  # the battles, each with its own question's answers
    pairs = [answers[(q, "creative_writing" if q == "q1" else "hard_prompt")] for q in order]
    features = ahm.style_features([p[0] for p in pairs], [p[1] for p in pairs])
    expected = ahm.score_style_control([1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 1.0], features, "both", 3, 7)
    assert scores["arena-hard-v0.1"]["style_controlled"] == expected


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
