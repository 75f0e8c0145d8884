"""`mt-repro bench` as a user runs it: the command line, a loopback OpenAI-compatible judge, files on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench_fixtures import FIRST, alpaca_rows, lc_fixture, v1_rows, write_jsonl
from judge_server import ScriptedServer
from typer.testing import CliRunner

from bench.registry import load_all
from reproduce.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def judge_server():
    """A chat-completions endpoint on 127.0.0.1 that always prefers the first output shown (text and logprobs)."""
    server = ScriptedServer(key=None, answer=lambda body: FIRST).start()
    yield server
    server.stop()


def one_error_line(result, *fragments: str) -> str:
    """The command failed with exit code 2 and printed one line, no traceback, naming each fragment."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output
    return lines[0]


# ---------------------------------------------------------------------------------------------- the registry


def test_commands_and_their_options_come_from_the_registry():
    import typer.main

    from reproduce.bench_cli import bench_app

    commands = set(typer.main.get_command(bench_app).commands)
    assert commands == {*load_all().names(), "list"}
    listing = runner.invoke(app, ["bench", "list"], env={"COLUMNS": "250"})
    assert listing.exit_code == 0, listing.output
    for name in load_all():
        assert name in listing.output
        for row in load_all().get(name).option_rows():
            assert row["option"] in listing.output
    assert "Allowed: none, length, markdown, both." in listing.output  # choices from the field metadata
    assert "yes, unless judgments=FILE" in listing.output
    helped = runner.invoke(app, ["bench", "arena-hard", "--help"], env={"COLUMNS": "250"})
    assert "style_control" in helped.output and "price_per_1k_prompt" in helped.output


def test_help_and_list_import_no_adapter_and_no_model_library():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom reproduce.cli import app\n"
            "for args in (['--help'], ['bench', '--help'], ['bench', 'list']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n"
            "heavy = ('torch', 'transformers', 'datasets', 'alpaca_eval', 'bench.alpaca_eval', 'bench.arena_hard', "
            "'bench.reward_bench', 'reproduce.published')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bad_options_are_one_line_naming_the_key():
    one_error_line(runner.invoke(app, ["bench", "arena-hard", "--option", "colour=red"]),
                   "unknown --option 'colour'", "style_control")
    one_error_line(runner.invoke(app, ["bench", "arena-hard", "-o", "rounds=0"]), "--option rounds=0: expected >= 1")
    one_error_line(runner.invoke(app, ["bench", "reward-bench", "-o", "version=two"]),
                   "--option version: expected an integer, got 'two'")
    one_error_line(runner.invoke(app, ["bench", "alpaca-eval", "-o", "lc_files"]), "--option 'lc_files': expected key")


# ---------------------------------------------------------------------------------------------- RewardBench


def test_reward_bench_from_the_command_line_with_the_papers_rows(tiny_models, tmp_path):
    _, reward = tiny_models
    data = write_jsonl(tmp_path / "pairs.jsonl", v1_rows())
    out = tmp_path / "rb"
    result = runner.invoke(app, ["bench", "reward-bench", "--model", str(reward), "--data", str(data),
                                 "--out", str(out), "--quiet"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "reward_bench.json").read_text())
    assert saved["partial"] is True  # a few subsets of the official 23
    assert saved["scores"]["subsets"]["alpacaeval-easy"]["n"] == 3
    # The adapter's file has this run only; the command adds the paper's published rows, with their sources.
    assert {r["source"] for r in saved["leaderboard"]} == {"this run"}
    assert "partial run" in result.output and "FsfairX" in result.output and "S2" in result.output


def test_bad_reward_bench_rows_name_the_file_and_line(tiny_models, tmp_path):
    _, reward = tiny_models
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "subset": "x"}) + "\n")
    args = ["bench", "reward-bench", "--model", str(reward), "--out", str(tmp_path / "rb"), "--quiet"]
    one_error_line(runner.invoke(app, [*args, "--data", str(data)]), f"{data}, line 1", "missing rejected")
    data.write_text(json.dumps(v1_rows()[0]) + "\n" + '{"prompt": "p", "chosen": \n')
    one_error_line(runner.invoke(app, [*args, "--data", str(data)]), f"{data}, line 2", "not valid JSON")
    data.write_text(json.dumps({**v1_rows()[0], "chosen": ["a", "b"]}) + "\n")
    one_error_line(runner.invoke(app, [*args, "--data", str(data)]), "line 1: chosen should be a string")
    one_error_line(runner.invoke(app, [*args, "--data", str(tmp_path)]), "a folder, expected a file")
    broken = tmp_path / "pairs.parquet"
    broken.write_bytes(b"PAR1 not really")
    one_error_line(runner.invoke(app, [*args, "--data", str(broken)]), f"{broken}: not a readable Parquet file")
    assert not (tmp_path / "rb").exists()  # nothing written before the data was read


def test_reward_bench_without_data_and_without_the_hub_says_to_pass_data(tiny_models, tmp_path):
    _, reward = tiny_models
    result = runner.invoke(app, ["bench", "reward-bench", "--model", str(reward), "--out", str(tmp_path / "rb"),
                                 "--quiet"], env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    one_error_line(result, "could not load allenai/reward-bench", "pass --data FILE")


def test_models_are_checked_on_disk_first(tiny_models, tmp_path):
    policy, reward = tiny_models
    args = ["bench", "reward-bench", "--out", str(tmp_path / "rb"), "--data", "allenai/reward-bench"]
    one_error_line(runner.invoke(app, [*args, "--model", str(policy)]), "is a LlamaForCausalLM, not a reward model")
    one_error_line(runner.invoke(app, [*args, "--model", str(tmp_path / "absent")]), "no such folder")
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text((Path(reward) / "config.json").read_text())
    one_error_line(runner.invoke(app, [*args, "--model", str(no_tokenizer)]), "has no tokenizer")
    one_error_line(runner.invoke(app, [*args, "--model", str(reward / "config.json")]), "a file, not a model folder")
    two_logits = tmp_path / "two-logits"
    shutil.copytree(reward, two_logits)
    config = json.loads((two_logits / "config.json").read_text())
    (two_logits / "config.json").write_text(json.dumps({**config, "id2label": {"0": "bad", "1": "good"}}))
    one_error_line(runner.invoke(app, [*args, "--model", str(two_logits)]), "has 2 output logits; expected one")


# ---------------------------------------------------------------------------------------------- AlpacaEval


def test_a_missing_model_folder_is_reported_before_any_hub_or_judge_call(judge_server, tmp_path):
    result = runner.invoke(app, ["bench", "alpaca-eval", "--model", "MISSING_DIR", "--data", "tatsu-lab/alpaca_eval",
                                 "--judge", f"openai:scripted@{judge_server.url}", "--out", str(tmp_path / "ae")])
    line = one_error_line(result, "policy model 'MISSING_DIR': no such folder")
    assert "hub" not in line.replace("hub id", "") and judge_server.requests == 0


def test_judged_benchmark_without_a_judge_says_how_to_give_one(tiny_models, tmp_path):
    policy, _ = tiny_models
    result = runner.invoke(app, ["bench", "alpaca-eval", "--model", str(policy), "--out", str(tmp_path)])
    one_error_line(result, "--judge openai:MODEL")


def test_alpaca_eval_with_a_remote_judge_then_cache_only(tiny_models, tmp_path, judge_server, monkeypatch):
    monkeypatch.setenv("MT_REPRO_CACHE", str(tmp_path / "cache"))  # no LC files anywhere: labelled fallback
    monkeypatch.setenv("JUDGE_KEY", "sk-test-secret")
    policy, _ = tiny_models
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(alpaca_rows(5)))
    args = ["bench", "alpaca-eval", "--model", str(policy), "--data", str(data), "--out", str(tmp_path / "ae"),
            "--judge", f"openai:scripted@{judge_server.url}", "--judge-api-key-env", "JUDGE_KEY", "--max-new-tokens",
            "8", "--quiet", "-o", "price_per_1k_prompt=0.01", "-o", "price_per_1k_completion=0.03"]
    first = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert first.exit_code == 0, first.output
    assert judge_server.answered == 5 and "sk-test-secret" not in first.output
    saved = json.loads((tmp_path / "ae" / "results.json").read_text())
    assert saved["lc_official"] is False and saved["scores"]["n"] == 5
    usage = saved["judge"]
    assert (usage["judge_calls"], usage["cache_hits"]) == (5, 0)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (judge_server.prompt_tokens,
                                                                    judge_server.completion_tokens)
    assert usage["estimated_cost"] == pytest.approx(
        (judge_server.prompt_tokens * 0.01 + judge_server.completion_tokens * 0.03) / 1000)
    assert usage["seconds"] > 0 and "5 calls, 0 from the cache" in first.output
    assert "Mutual-Taught" in first.output and "Table 1 (S1)" in first.output  # the paper's rows, added here
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert judge_server.answered == 5  # answered from the cache
    again = json.loads((tmp_path / "ae" / "results.json").read_text())
    assert again["scores"] == saved["scores"] and again["judge"]["cache_hits"] == 5
    assert again["judge"]["judge_calls"] == 0 and again["judge"]["estimated_cost"] == 0


def test_an_unusable_judge_is_one_line(tiny_models, tmp_path, monkeypatch):
    policy, _ = tiny_models
    server = ScriptedServer().start()  # wants a key we do not give
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(alpaca_rows(2)))
    try:
        result = runner.invoke(app, ["bench", "alpaca-eval", "--model", str(policy), "--data", str(data), "--quiet",
                                     "--judge", f"openai:m@{server.url}", "--max-new-tokens", "4",
                                     "--out", str(tmp_path / "ae")])
    finally:
        server.stop()
    one_error_line(result, "HTTP 401", "$OPENAI_API_KEY, which is not set")


def test_alpaca_eval_scores_annotations_made_elsewhere_without_a_judge(tmp_path, monkeypatch):
    """alpaca_eval's annotations.json shape, rows shuffled and without example indices: the instructions are looked
    up in the data, so the official LC sees each one's difficulty, exactly as on our own annotations."""
    from alpaca_eval.metrics import get_winrate

    from bench.metrics import alpaca_eval as aem

    monkeypatch.setenv("MT_REPRO_CACHE", str(tmp_path / "cache"))
    rows = alpaca_rows(8)
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps(rows))
    preferences = [2, 1, 1.5, 2, 2, 1, 0, 1.8]
    annotations = [{"instruction": r["instruction"], "output_1": r["output"], "output_2": "m" * (3 + 7 * i),
                    "generator_1": "gpt4_1106_preview", "generator_2": "their-model", "annotator": "their-judge",
                    "preference": p, "price_per_example": 0.001} for i, (r, p) in enumerate(zip(rows, preferences,
                                                                                                strict=True))]
    annotations[5]["preference"] = None  # the judge's answer did not parse
    shuffled = [annotations[i] for i in (3, 0, 7, 5, 1, 6, 2, 4)]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(shuffled))
    lc = lc_fixture(tmp_path / "lc", n=8)
    result = runner.invoke(app, ["bench", "alpaca-eval", "--data", str(data), "-o", f"annotations={path}",
                                 "-o", f"lc_files={lc}", "--out", str(tmp_path / "scored")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "scored" / "results.json").read_text())
    kept = [{**a, "example_index": i, "preference": 1.5 if a["preference"] == 0 else a["preference"]}
            for i, a in enumerate(annotations) if a["preference"] is not None]
    expected, official, _ = aem.score(kept, lc)
    assert saved["scores"] == expected and saved["lc_official"] is official is True
    assert saved["scores"]["win_rate"] == pytest.approx(get_winrate([{"preference": a["preference"]}
                                                                     for a in kept])["win_rate"])
    assert saved["parse"]["failed"] == 1 and saved["judge"]["judge"] is None and saved["judge"]["judge_calls"] == 0
    assert saved["generator"] == "their-model" and "their-model (this run)" in result.output

    path.write_text(json.dumps([{**annotations[0], "preference": 7}]))
    one_error_line(runner.invoke(app, ["bench", "alpaca-eval", "-o", f"annotations={path}", "--out",
                                       str(tmp_path / "bad")]), f"{path}, row 1: 'preference' should be a number")


# ---------------------------------------------------------------------------------------------- Arena-Hard


def test_arena_hard_scores_a_judgment_file_without_a_judge_or_a_model(tmp_path):
    from bench.metrics import arena_hard as ahm

    labels = [("A>B", "A>B"), ("B>A", "A>>B"), ("A=B", "B>A"), ("B>>A", "B<A")]
    path = tmp_path / "other.jsonl"
    write_jsonl(path, [{"uid": f"u{i}", "category": "hard_prompt", "model": "other", "games": [
        {"score": g1, "judgment": {"answer": f"[[{g1}]]"}}, {"score": g2, "judgment": {"answer": f"[[{g2}]]"}}]}
        for i, (g1, g2) in enumerate(labels)])
    result = runner.invoke(app, ["bench", "arena-hard", "-o", f"judgments={path}", "-o", "version=v2.0",
                                 "--out", str(tmp_path / "out")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    # by hand, per question: game 2's score of A (the model), then 1 - game 1's score of A (the baseline)
    outcomes = [1, 0] + [1, 1, 1, 1] + [0, 0.5] + [1, 1, 1, 1]
    assert saved["scores"]["score"] == pytest.approx(ahm.score_v20(outcomes)["score"])
    assert saved["name"] == "other" and saved["judge"]["judge_calls"] == 0
    assert "Llama-3-8B-Instruct" in result.output and "not comparable" in result.output  # the paper's v0.1 rows
