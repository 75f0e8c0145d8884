"""`mt-repro bench` as a user runs it: the command line, a loopback OpenAI-compatible judge, files on disk."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from reproduce.bench_cli import BENCH_HELP
from reproduce.cli import app

runner = CliRunner()
# A text judge's answer (alpaca_eval_llama3_70b_fn's shape): the first output shown wins.
FIRST_WINS = "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"


@pytest.fixture
def judge_server():
    """A chat-completions endpoint on 127.0.0.1 that always prefers the first output shown (text and logprobs)."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(body["model"])
            choice = {"index": 0, "message": {"role": "assistant", "content": FIRST_WINS}, "finish_reason": "stop"}
            if body.get("logprobs"):  # the official AE2 annotator reads the first token's top logprobs
                tops = [{"token": "m", "logprob": -0.2}, {"token": "M", "logprob": -1.8}][: body["top_logprobs"]]
                choice["logprobs"] = {"content": [{"token": "m", "logprob": -0.2, "top_logprobs": tops}]}
            data = json.dumps({"object": "chat.completion", "model": body["model"], "choices": [choice]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", calls
    httpd.shutdown()
    httpd.server_close()


def test_every_registered_benchmark_has_a_command():
    from bench.registry import load_all

    assert set(BENCH_HELP) == set(load_all().names())
    result = runner.invoke(app, ["bench", "list"])
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in BENCH_HELP)


def test_reward_bench_from_the_command_line(tiny_models, tmp_path):
    _, reward = tiny_models
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"add {i}+1", "chosen": str(i + 1), "rejected": str(i), "subset": "alpacaeval-easy"}
            for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rb"
    result = runner.invoke(app, ["bench", "reward-bench", "--model", str(reward), "--data", str(data),
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "reward_bench.json").read_text())
    assert saved["partial"] is True  # one subset of the official 23
    assert saved["scores"]["subsets"]["alpacaeval-easy"]["n"] == 6
    assert "partial run" in result.output and "FsfairX" in result.output  # published rows beside ours
    assert {r["source"] for r in saved["leaderboard"]} >= {"this run", "S1", "S2"}


def test_bad_reward_bench_rows_are_one_error_line(tiny_models, tmp_path):
    _, reward = tiny_models
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "subset": "x"}) + "\n")
    result = runner.invoke(app, ["bench", "reward-bench", "--model", str(reward), "--data", str(data),
                                 "--out", str(tmp_path / "rb"), "--quiet"])
    assert result.exit_code == 2 and "error:" in result.output and "rejected" in result.output


def test_judged_benchmark_without_a_judge_says_how_to_give_one(tiny_models, tmp_path):
    policy, _ = tiny_models
    result = runner.invoke(app, ["bench", "alpaca-eval", "--model", str(policy), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--judge openai:MODEL" in result.output


def test_alpaca_eval_with_a_remote_judge_then_cache_only(tiny_models, tmp_path, judge_server, monkeypatch):
    url, calls = judge_server
    monkeypatch.setenv("MT_REPRO_CACHE", str(tmp_path / "cache"))  # no LC files anywhere: labelled fallback
    monkeypatch.setenv("JUDGE_KEY", "sk-test-secret")
    policy, _ = tiny_models
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps([{"instruction": f"say {w}", "output": f"{w}, said at some length", "generator":
                                 "gpt4_1106_preview", "dataset": "fixture"} for w in ("hi", "yes", "no", "ok", "go")]))
    args = ["bench", "alpaca-eval", "--model", str(policy), "--data", str(data), "--out", str(tmp_path / "ae"),
            "--judge", f"openai:scripted@{url}", "--judge-api-key-env", "JUDGE_KEY", "--max-new-tokens", "8",
            "--quiet"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert len(calls) == 5 and "sk-test-secret" not in first.output
    saved = json.loads((tmp_path / "ae" / "results.json").read_text())
    assert saved["lc_official"] is False and saved["scores"]["n"] == 5
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert len(calls) == 5  # answered from the cache
    assert json.loads((tmp_path / "ae" / "results.json").read_text())["scores"] == saved["scores"]
