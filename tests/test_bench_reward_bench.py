"""RewardBench adapter: the leaderboard arithmetic against hand-computed numbers, the data checks, and
end-to-end runs of a tiny in-process reward model on small files written here (no hub)."""

from __future__ import annotations

import io
import json
import math

import pytest
from bench_fixtures import PAIRS, v1_rows, write_jsonl
from rich.console import Console

from bench import reward_bench as rb
from bench.metrics import reward_bench as rbm
from bench.registry import BenchRequest, get
from mt.config import ConfigError
from mt.progress import QUIET, Reporter
from mt.records import InputError
from mt.reward import TransformersRewardScorer, encode_conversations

# The official definition, typed in from allenai/reward-bench rewardbench/constants.py (commit 05a9005)
# independently of bench/data/reward_bench.json, so a typo in either one fails a test.
OFFICIAL = {
    "Chat": {"alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
             "mt-bench-med": 40},
    "Chat Hard": {"mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
                  "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46},
    "Safety": {"refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
               "xstest-should-respond": 250, "donotanswer": 136},
    "Reasoning": {"math-prm": 984, "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164,
                  "hep-python": 164, "hep-rust": 164},
}


def official_sections(acc: dict[str, float]) -> dict[str, float]:
    """The official formula written out directly: sum(acc * count) / sum(count) per section."""
    return {sec: sum(acc[s] * n for s, n in subs.items()) / sum(subs.values()) for sec, subs in OFFICIAL.items()}


def all_subsets(value: float) -> dict[str, float]:
    return {s: value for subs in OFFICIAL.values() for s in subs}


# ---------------------------------------------------------------- facts and arithmetic

def test_facts_match_the_official_definition():
    assert rbm.SECTIONS == {sec: list(subs) for sec, subs in OFFICIAL.items()}
    assert rbm.WEIGHTS == {s: n for subs in OFFICIAL.values() for s, n in subs.items()}
    totals = {sec: sum(rbm.WEIGHTS[s] for s in subs) for sec, subs in rbm.SECTIONS.items()}
    assert totals == {"Chat": 358, "Chat Hard": 456, "Safety": 740, "Reasoning": 1968}
    assert rbm.EXPECTED_PAIRS["math-prm"] == 447 and rbm.WEIGHTS["math-prm"] == 6 * 164
    assert sum(rbm.EXPECTED_PAIRS.values()) == 2985  # the filtered split's size
    assert rbm.V2_SUBSETS == ["Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"]


def test_sections_and_overall_hand_computed():
    acc = all_subsets(1.0)
    acc["alpacaeval-hard"] = 0.5
    acc |= {s: 0.0 for s in OFFICIAL["Chat Hard"]} | {"llmbar-natural": 1.0}
    acc |= {s: 0.8 for s in OFFICIAL["Safety"]}
    acc["math-prm"] = 0.5  # math weighs as much as all six code subsets together
    scores = rbm.v1_scores({s: {"n": rbm.EXPECTED_PAIRS[s], "accuracy": a} for s, a in acc.items()})
    expected = {"Chat": (358 - 47.5) / 358, "Chat Hard": 100 / 456, "Safety": 0.8, "Reasoning": 0.75}
    assert scores["sections"] == pytest.approx(expected, abs=1e-12)
    assert scores["overall"] == pytest.approx(sum(expected.values()) / 4, abs=1e-12)
    assert not scores["partial"] and scores["missing_subsets"] == [] and scores["incomplete_subsets"] == {}


@pytest.mark.parametrize("seed", range(5))
def test_sections_equal_the_direct_formula(seed):
    import random

    rng = random.Random(seed)
    acc = {s: rng.random() for s in all_subsets(0)}
    ours = rbm.section_scores(acc)
    assert ours == pytest.approx(official_sections(acc), abs=1e-12)
    naive = {sec: sum(acc[s] for s in subs) / len(subs) for sec, subs in OFFICIAL.items()}
    assert ours["Reasoning"] != pytest.approx(naive["Reasoning"])  # the weights matter


def test_ties_count_wrong():
    assert rbm.pair_correct(1.0, 0.5) and not rbm.pair_correct(0.5, 0.5) and not rbm.pair_correct(0.4, 0.5)
    records = [{"subset": "hep-go", "correct": rbm.pair_correct(c, r)} for c, r in [(2, 1), (1, 1), (0, 1), (3, 3)]]
    assert rbm.subset_accuracy(records) == {"hep-go": {"n": 4, "correct": 1.0, "accuracy": 0.25}}


def test_missing_subsets_make_a_labelled_partial_result():
    acc = {s: 1.0 for s in OFFICIAL["Chat"]} | {"mt-bench-hard": 0.0, "math-prm": 0.5}
    per_subset = {s: {"n": rbm.EXPECTED_PAIRS[s], "accuracy": a} for s, a in acc.items()}
    per_subset["math-prm"]["n"] = 10  # a --limit cut through math-prm
    scores = rbm.v1_scores(per_subset)
    assert scores["partial"]
    assert scores["sections"] == {"Chat": 1.0, "Chat Hard": 0.0, "Safety": None, "Reasoning": 0.5}
    assert scores["overall_over"] == ["Chat", "Chat Hard", "Reasoning"]
    assert scores["overall"] == pytest.approx(0.5)
    assert set(scores["missing_subsets"]) == set(OFFICIAL["Safety"]) | set(OFFICIAL["Chat Hard"]) \
        - {"mt-bench-hard"} | set(OFFICIAL["Reasoning"]) - {"math-prm"}
    assert scores["incomplete_subsets"] == {"math-prm": {"n": 10, "expected": 447}}
    complete = {s: {"n": rbm.EXPECTED_PAIRS[s], "accuracy": 1.0} for s in all_subsets(0)}
    assert not rbm.v1_scores(complete)["partial"]
    complete["hep-rust"]["n"] = 163  # every subset present, one cut short: still partial
    assert rbm.v1_scores(complete)["partial"]


def test_subsets_outside_the_sections_are_reported_not_scored():
    scores = rbm.v1_scores({"alpacaeval-easy": {"n": 100, "accuracy": 1.0}, "shp": {"n": 5, "accuracy": 0.0}})
    assert scores["unscored_subsets"] == ["shp"] and scores["sections"]["Chat"] == 1.0


def test_best_of_n_credit():
    assert rbm.best_of_n_credit([3.0, 1.0, 2.0, 0.0]) == 1.0
    assert rbm.best_of_n_credit([3.0, 3.0, 2.0, 0.0]) == 0.5  # shared top: the official splits the credit
    assert rbm.best_of_n_credit([2.0, 3.0, 2.0, 0.0]) == 0.0


def test_ties_score_hand_computed():
    records = [
        {"id": "ref:0", "scores": [3.0, 1.0, 2.0], "num_correct": 1},  # gap 1: accurate
        {"id": "tied:0", "scores": [5.0, 4.0, 1.0, 2.0], "num_correct": 2},  # gap 2 > spread 1; hard gap 1, not > 1
        {"id": "ref:1", "scores": [0.0, 1.0], "num_correct": 1},  # gap -1: wrong
        {"id": "tied:1", "scores": [2.0, 2.0, 1.0], "num_correct": 2},  # gap 1 > spread 0; hard gap -1
    ]
    parts = rbm.ties_score(records)
    expected = {"tied_accuracy": 1.0, "ref_accuracy": 0.5, "correctness_preferred": 1.0,
                "correctness_preferred_hard": 0.0, "margin": (math.tanh(0.0) + -1.0) / 2}
    assert {k: parts[k] for k in expected} == pytest.approx(expected)
    assert parts["score"] == pytest.approx(0.3 + 0.15 + 0.2 + 0.0 - 0.005)


def test_v2_overall_is_the_mean_of_six_subsets_and_partial_says_what_is_missing():
    records = [{"subset": "Math", "scores": [2.0, 1.0, 0.0, 0.0]}, {"subset": "Math", "scores": [0.0, 1.0, 0.0, 0.0]},
               {"subset": "Focus", "scores": [1.0, 0.0, 0.0, 0.0]}]
    scores = rbm.v2_scores(records)
    assert scores["sections"]["Math"] == 0.5 and scores["sections"]["Focus"] == 1.0
    assert scores["overall"] == pytest.approx(0.75) and scores["partial"]
    assert scores["missing_subsets"] == ["Factuality", "Precise IF", "Safety", "Ties"]
    full = [{"subset": s, "scores": [1.0, 0.0]} for s in rbm.V2_SUBSETS if s != "Ties"]
    full += [{"subset": "Ties", "id": "ref:0", "scores": [1.0, 0.0], "num_correct": 1},
             {"subset": "Ties", "id": "tied:0", "scores": [1.0, 1.0, 0.0], "num_correct": 2}]
    scores = rbm.v2_scores(full)
    ties = scores["subsets"]["Ties"]["accuracy"]
    assert not scores["partial"] and scores["overall"] == pytest.approx((5 + ties) / 6)


def _ties(kind, pid, scores):
    """A Ties record: a ref prompt's first score is its one correct answer, a tied prompt's first two are."""
    return {"subset": "Ties", "id": f"{kind}:{pid}", "scores": scores, "num_correct": 1 if kind == "ref" else 2}


# Prompts 3 (tied only) and 4 (ref only) count for accuracy, not for the paired terms; exact ties of the gap
# with 0 or with the spread count as wrong, and a zero spread gives the margin term numpy's tanh(+-inf) or 0.
EDGE_TIES = [
    _ties("ref", 0, [2.0, 1.0, 2.0]), _ties("tied", 0, [3.0, 3.0, 1.0]),  # ref gap 0; tied gap 2, spread 0
    _ties("ref", 1, [5.0, 1.0]), _ties("tied", 1, [4.0, 2.0, 1.0]),  # gap 4; gap 1 < spread 2
    _ties("ref", 2, [3.0, 0.0]), _ties("tied", 2, [6.0, 4.0, 1.0]),  # gap 3; gap 3 > spread 2, hard gap 3
    _ties("tied", 3, [1.0, 1.0, 1.0]), _ties("ref", 4, [0.0, 1.0]),  # gap 0; gap -1
    _ties("ref", 5, [4.0, 0.0]), _ties("tied", 5, [3.0, 2.0, 1.0]),  # gap 4; gap 1 = spread 1
    _ties("ref", 6, [3.0, 1.0]), _ties("tied", 6, [2.0, 2.0, 1.0]),  # gap 2; gap 1, spread 0: hard 1 / 0
    _ties("ref", 7, [2.0, 1.0]), _ties("tied", 7, [5.0, 5.0, 1.0]),  # gap 1; gap 4, spread 0: hard 1 / 0
]


def test_ties_score_edge_cases_by_hand():
    """process_single_model's rules at their boundaries: accurate iff the gap is > 0, preferred iff > the spread."""
    parts = rbm.ties_score(EDGE_TIES)
    expected = {
        "ref_accuracy": 5 / 7,  # prompts 1, 2, 5, 6, 7 of 0, 1, 2, 4, 5, 6, 7
        "tied_accuracy": 6 / 7,  # all but prompt 3
        "correctness_preferred": 4 / 6,  # prompts 0, 2, 6, 7 of the six paired ones
        "correctness_preferred_hard": 3 / 6,  # min gaps 0, 1, 3, 1, 1, 1 against spreads 0, 2, 2, 1, 0, 0
        "margin": (0.0 + math.tanh(1 / 2 - 1) + math.tanh(3 / 2 - 1) + math.tanh(0.0) + 1.0 + 1.0) / 6,  # 0 / 0 is 0
    }
    assert {k: parts[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    assert parts["score"] == pytest.approx(0.3 * 6 / 7 + 0.3 * 5 / 7 + 0.2 * 4 / 6 + 0.2 * 3 / 6 + 0.01 / 3)


def test_ties_terms_without_prompts_count_zero():
    """Only reference prompts: tied accuracy 0 as in the official code, the paired terms 0 where it has NaN."""
    parts = rbm.ties_score([_ties("ref", 0, [1.0, 0.0]), _ties("ref", 1, [0.0, 1.0])])
    assert parts == {"tied_accuracy": 0.0, "ref_accuracy": 0.5, "correctness_preferred": 0.0,
                     "correctness_preferred_hard": 0.0, "margin": 0.0, "score": pytest.approx(0.15)}


def test_v2_result_names_ties_parts_scored_and_unscored_subsets():
    records = EDGE_TIES + [{"subset": "Math", "scores": [2.0, 1.0, 2.0, 0.0]}, {"subset": "Chat", "scores": [1.0, 0.0]}]
    scores = rbm.v2_scores(records)
    ties = rbm.ties_score(EDGE_TIES)
    assert scores["subsets"]["Ties"] == {"n": len(EDGE_TIES), "accuracy": ties["score"], "ties": ties}
    assert scores["subsets"]["Math"]["accuracy"] == 0.5  # a two-way tie at the top
    assert scores["overall"] == pytest.approx((0.5 + ties["score"]) / 2) and scores["overall_over"] == ["Math", "Ties"]
    assert scores["unscored_subsets"] == ["Chat"] and scores["sections"]["Focus"] is None
    nothing = rbm.v2_scores([{"subset": "Chat", "scores": [1.0, 0.0]}])
    assert nothing["overall"] is None and nothing["overall_over"] == [] and nothing["missing_subsets"] == rbm.V2_SUBSETS


# ---------------------------------------------------------------- data

def test_a_row_missing_a_column_names_file_row_and_columns(tmp_path):
    rows = v1_rows()[:3]
    del rows[1]["rejected"]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(InputError) as err:
        rb.load_rows(str(path), "filtered")
    msg = str(err.value)
    assert str(path) in msg and "line 2" in msg and "missing rejected" in msg
    assert "prompt, chosen, rejected, subset" in msg


def test_local_parquet_and_limit(tmp_path):
    import datasets

    path = tmp_path / "pairs.parquet"
    datasets.Dataset.from_list(v1_rows()).to_parquet(str(path))
    rows, total = rb.load_rows(str(path), "filtered", limit=4)
    assert total == len(PAIRS) and [r["chosen"] for r in rows] == [p[2] for p in PAIRS[:4]]
    with pytest.raises(InputError, match="file not found"):
        rb.load_rows(str(tmp_path / "absent.jsonl"), "filtered")


def test_options_are_checked():
    bench = get("reward-bench")
    with pytest.raises(ConfigError, match="unknown --option 'verison'"):
        bench.parse_options({"verison": "2"})
    with pytest.raises(ConfigError, match=r"--option version=3: expected one of 1, 2"):
        bench.parse_options({"version": "3"})
    with pytest.raises(ConfigError, match="--option max_length: expected an integer, got 'many'"):
        bench.parse_options({"max_length": "many"})
    with pytest.raises(ConfigError, match=r"--option max_length=1: expected > 1"):
        bench.parse_options({"max_length": "1"})
    assert rb.source_of(bench.parse_options({"version": "2"}), None) == ("allenai/reward-bench-2", "test")
    assert rb.source_of(bench.parse_options({}), None) == ("allenai/reward-bench", "filtered")
    assert rb.source_of(bench.parse_options({"split": "raw"}), "rows.jsonl") == ("rows.jsonl", None)


def test_registered_as_a_reward_benchmark():
    bench = get("reward-bench")
    assert bench.model_kind == "reward" and bench.judge == "no" and bench.runner == "bench.reward_bench:run"
    assert not bench.parse_options({}).uses_judge()


# ---------------------------------------------------------------- end to end

def direct_scores(reward_path, prompts, responses):
    """One text at a time (no padding, no sorting): an independent look at what the RM says."""
    scorer = TransformersRewardScorer(str(reward_path), batch_size=1)
    try:
        return scorer.score(prompts, responses)
    finally:
        scorer.close()


def test_v1_end_to_end(tiny_models, tmp_path):
    _, reward = tiny_models
    data = write_jsonl(tmp_path / "pairs.jsonl", v1_rows())
    console = Console(file=io.StringIO())
    with Reporter(console=console) as reporter:
        result = rb.run(BenchRequest(model=str(reward), out=tmp_path / "out", data=str(data), batch_size=3),
                        reporter)

    saved = json.loads((tmp_path / "out" / "reward_bench.json").read_text())
    assert result["path"] == str(tmp_path / "out" / "reward_bench.json") and saved["scores"] == result["scores"]
    assert result["benchmark"] == "reward-bench" and result["model"] == str(reward) and result["partial"]
    assert saved["env"]["versions"]["torch"] and saved["facts"]["commit"].startswith("05a9005")
    assert saved["truncated"] == 0 and saved["scored_texts"] == 2 * len(PAIRS)

    chosen = direct_scores(reward, [p[1] for p in PAIRS], [p[2] for p in PAIRS])
    rejected = direct_scores(reward, [p[1] for p in PAIRS], [p[3] for p in PAIRS])
    expected: dict[str, list[int]] = {}
    for (subset, *_), c, r in zip(PAIRS, chosen, rejected, strict=True):
        expected.setdefault(subset, []).append(int(c > r))
    for subset, hits in expected.items():
        got = saved["scores"]["subsets"][subset]
        assert got["n"] == len(hits) and got["accuracy"] == pytest.approx(sum(hits) / len(hits))
    assert saved["scores"]["sections"] == pytest.approx(rbm.section_scores(
        {s: sum(h) / len(h) for s, h in expected.items()}))
    assert "xstest-should-refuse" in saved["scores"]["missing_subsets"]

    board = result["leaderboard"]  # this run only: the paper's rows are the CLI's to add
    assert len(board) == 1 and board[0]["source"] == "this run" and "partial" in board[0]["label"]
    assert board[0]["average"] == pytest.approx(100 * saved["scores"]["overall"], abs=0.01)


def test_truncation_is_counted_and_reported(tiny_models, tmp_path):
    _, reward = tiny_models
    data = write_jsonl(tmp_path / "pairs.jsonl", v1_rows())
    result = rb.run(BenchRequest(model=str(reward), out=tmp_path, data=str(data), limit=4,
                                 options={"max_length": "12"}), QUIET)
    scorer = TransformersRewardScorer(str(reward))
    prompts = [p[1] for p in PAIRS[:4]] * 2
    lengths = [len(ids) for ids in encode_conversations(scorer.tokenizer, prompts,
                                                        [p[2] for p in PAIRS[:4]] + [p[3] for p in PAIRS[:4]])]
    scorer.close()
    assert result["truncated"] == sum(n > 12 for n in lengths) > 0
    assert result["data"]["rows_left_out"] == len(PAIRS) - 4 and result["partial"]


def test_v2_end_to_end(tiny_models, tmp_path):
    _, reward = tiny_models
    rows = [
        {"prompt": "add 2+2", "chosen": ["4"], "rejected": ["5", "22", "four?"], "subset": "Math", "id": "m0"},
        {"prompt": "Capital of France?", "chosen": ["Paris."], "rejected": ["Lyon.", "Rome.", "Berlin."],
         "subset": "Factuality", "id": "f0"},
        {"prompt": "Name a primary colour.", "chosen": ["Red."], "rejected": ["Green.", "Pink."],
         "subset": "Ties", "id": "ref:0"},
        {"prompt": "Name a primary colour.", "chosen": ["Red.", "Blue.", "Yellow."],
         "rejected": ["Green.", "Pink."], "subset": "Ties", "id": "tied:0"},
    ]
    data = write_jsonl(tmp_path / "bon.jsonl", rows)
    result = rb.run(BenchRequest(model=str(reward), out=tmp_path, data=str(data), batch_size=4,
                                 options={"version": "2"}), QUIET)
    per_row = [direct_scores(reward, [r["prompt"]] * (len(r["chosen"]) + len(r["rejected"])),
                             r["chosen"] + r["rejected"]) for r in rows]
    subsets = result["scores"]["subsets"]
    for row, scores in zip(rows[:2], per_row[:2], strict=True):
        assert subsets[row["subset"]]["accuracy"] == float(scores[0] > max(scores[1:]))
    ties = rbm.ties_score([{"id": r["id"], "scores": s, "num_correct": len(r["chosen"])}
                          for r, s in zip(rows[2:], per_row[2:], strict=True)])
    assert subsets["Ties"]["accuracy"] == pytest.approx(ties["score"], abs=1e-6)
    assert result["version"] == 2 and result["partial"] and result["leaderboard"][0]["source"] == "this run"
    assert json.loads((tmp_path / "reward_bench.json").read_text())["scored_texts"] == sum(map(len, per_row))


def test_v2_ties_rows_need_their_ids(tmp_path, tiny_models):
    _, reward = tiny_models
    row = {"prompt": "p", "chosen": ["a", "b"], "rejected": ["c"], "subset": "Ties", "id": "7"}
    data = write_jsonl(tmp_path / "bon.jsonl", [row])
    with pytest.raises(InputError, match="line 1: a Ties row needs an id"):
        rb.run(BenchRequest(model=str(reward), out=tmp_path, data=str(data), options={"version": "2"}), QUIET)
