"""The paper's evaluation path end to end on CPU: `table1 --preset tiny-bench` trains a cell on the gold world,
benchmarks its final models (and pi_0/r_0 once) with the real adapters against a loopback judge that speaks the
OpenAI HTTP API, and fills the AE2 LC, Arena-Hard and RewardBench columns; a second invocation asks no judge."""

from __future__ import annotations

import json

import pytest
from bench_fixtures import alpaca_rows, arena_repo, lc_fixture, v1_rows, write_jsonl
from judge_server import ScriptedServer
from test_bench_environment import verdict
from typer.testing import CliRunner

from reproduce.cli import app

pytestmark = pytest.mark.slow


def column(markdown: str, row: str, title: str) -> str:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == row:
            return cells[header.index(title)]
    raise AssertionError(f"no row {row!r} in\n{markdown}")


def test_tiny_bench_fills_the_benchmark_columns_and_reruns_without_the_judge(small_world_args, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "alpaca.json").write_text(json.dumps(alpaca_rows(6)))
    sets = {"bench.alpaca_eval.data": data / "alpaca.json", "bench.alpaca_eval.options.lc_files":
            lc_fixture(data / "lc", n=6), "bench.arena_hard.data": arena_repo(data / "arena", "v2.0", n=4),
            "bench.arena_hard.options.token_counter": "policy",
            "bench.reward_bench.data": write_jsonl(data / "pairs.jsonl", v1_rows()),
            "bench.judge_api_key_env": "NO_SUCH_KEY_ENV", "data.max_prompts": 60, "run.iterations": 1}
    server = ScriptedServer(key=None, answer=verdict).start()
    try:
        args = ["table1", "--preset", "tiny-bench", "--seeds", "1", "-m", "mutual-taught", "--quiet",
                "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), *small_world_args,
                "--set", f"bench.judge=openai:judge@{server.url}",
                *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        asked = server.answered
        # Two model pairs benchmarked (the cell's final models, pi_0 and r_0 once): 6 + 2 x 4 calls each.
        assert asked == 2 * (6 + 2 * 4)
        table1 = (tmp_path / "out" / "table1.md").read_text()
        for row in ("initial policy (pi_0)", "mutual-taught"):
            for title in ("AE2 LC (%)", "Arena-Hard (%)"):
                value = column(table1, row, title)
                assert value != "-" and 0 <= float(value.split()[0]) <= 100, (row, title, value)
        table2 = (tmp_path / "out" / "table2.md").read_text()
        assert column(table2, "RM after mutual-taught", "RewardBench avg (%)") != "-"
        assert column(table2, "initial RM (r_0)", "RewardBench avg (%)") != "-"
        cells = json.loads((tmp_path / "out" / "cells.json").read_text())
        final = next(c for c in cells if c["method"] == "mutual-taught")["final"]
        assert final["alpaca_eval_judge_calls"] == 6 and final["arena_hard_judge_calls"] == 8

        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert server.answered == asked  # finished cells and the initial evaluation are read back
    finally:
        server.stop()
