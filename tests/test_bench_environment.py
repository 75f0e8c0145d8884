"""The benchmark evaluation of a run (bench/environment.py): tiny models, small benchmark files written here,
and a loopback judge speaking the real chat-completions HTTP API.

The evaluation runs as the loop runs it, as the resumable stage ``iter_<t>/evaluate`` of a run
directory; the judge server counts every request, so "no judge call" is a number, not a hope.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bench_fixtures import SYSTEM, alpaca_rows, arena_repo, lc_fixture, v1_rows, write_jsonl
from judge_server import ScriptedServer

from bench.environment import (
    BenchConfig,
    BenchmarkEvaluation,
    flat_metrics,
    load_bench_config,
    plan_evaluation,
)
from bench.judges import JudgeError
from bench.metrics import arena_hard as ahm
from bench.metrics import reward_bench as rbm
from mt.config import ConfigError, load_config
from mt.env import PromptEnvironment
from mt.records import InputError, write_json
from mt.rundir import RunDir

ALPACA_N, ARENA_N, PAIRS_N = 6, 4, 9
JUDGE_CALLS = ALPACA_N + 2 * ARENA_N  # one per instruction; two games per question (v2.0: no follow-ups)


def verdict(body: dict) -> str:
    """Arena-Hard games: the baseline wins the questions about adding, the model the rest. AlpacaEval's official
    annotator reads first-token logprobs (the server sends them), so its text does not matter."""
    if not any(m["content"] == SYSTEM for m in body["messages"]):
        return "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"
    text = body["messages"][-1]["content"]
    baseline_is_a = "[A] BASELINE" in text
    if text.startswith("Q: add"):
        return "[[A>B]]" if baseline_is_a else "[[B>A]]"
    return "[[B>A]]" if baseline_is_a else "[[A>B]]"


# In question order (u0 "add 2+3", then sort, reverse, say hi), v2.0 puts game 2's battle first.
ARENA_OUTCOMES = [0.0, 0.0] + [1.0, 1.0] * 3


@pytest.fixture
def server():
    s = ScriptedServer(key=None, answer=verdict).start()
    yield s
    s.stop()


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    alpaca = tmp_path / "data" / "alpaca.json"
    alpaca.parent.mkdir()
    alpaca.write_text(json.dumps(alpaca_rows(ALPACA_N)))
    return {"alpaca": alpaca, "lc": lc_fixture(tmp_path / "data" / "lc", n=ALPACA_N),
            "arena": arena_repo(tmp_path / "data" / "arena", "v2.0", n=ARENA_N),
            "pairs": write_jsonl(tmp_path / "data" / "pairs.jsonl", v1_rows())}


def bench_overrides(files, url: str | None, *extra: str) -> list[str]:
    judge = [f"bench.judge=openai:judge-model@{url}"] if url else []
    return ["run.env=prompts", "run.evaluation=benchmarks", "run.name=demo", *judge, "bench.judge_api_key_env=NO_SUCH_KEY_ENV",
            f"bench.alpaca_eval.data={files['alpaca']}", f"bench.alpaca_eval.options.lc_files={files['lc']}",
            f"bench.arena_hard.data={files['arena']}", "bench.arena_hard.options.token_counter=policy",
            f"bench.reward_bench.data={files['pairs']}", "bench.max_new_tokens=6", "bench.batch_size=4", *extra]


def config(files, url, *extra):
    return load_config("tiny", overrides=bench_overrides(files, url, *extra))


def evaluate_stage(root: Path, cfg, policy, reward, iteration: int = 1) -> tuple[dict, bool]:
    """The stage as mt/loop.py runs it (a fresh environment and run directory each call, as a new process has)."""
    env = BenchmarkEvaluation(PromptEnvironment(cfg), cfg)
    rd = RunDir.open(root, cfg.to_dict(), cfg.run.seed)
    try:
        def stage(ctx):
            metrics = env.evaluate(ctx, str(policy), str(reward), iteration)
            write_json(ctx.dir / "metrics.json", metrics)
            return {}, metrics

        _, ran = rd.run_stage(iteration, "evaluate", stage, 0)
        return rd.done_record(iteration, "evaluate")["metrics"], ran
    finally:
        rd.close()


def test_final_models_are_benchmarked_once_then_from_the_cache(tiny_models, files, server, tmp_path):
    policy, reward = tiny_models
    cfg = config(files, server.url)
    run = tmp_path / "run"
    metrics, ran = evaluate_stage(run, cfg, policy, reward)
    assert ran and server.answered == JUDGE_CALLS

    # AlpacaEval 2: the official LC (the fixture's difficulty files), every instruction judged once.
    assert metrics["alpaca_eval_lc_official"] is True and 0 <= metrics["alpaca_eval_lc"] <= 100
    assert 0 <= metrics["alpaca_eval_win_rate"] <= 100 and metrics["alpaca_eval_n"] == ALPACA_N
    assert metrics["alpaca_eval_judge_calls"] == ALPACA_N and metrics["alpaca_eval_judge_cache_hits"] == 0
    assert metrics["alpaca_eval_annotator"] == "weighted_alpaca_eval_gpt4_turbo"  # the judge returns logprobs
    # Arena-Hard v2.0: the scripted verdicts give exactly these battles.
    assert metrics["arena_hard"] == pytest.approx(ahm.score_v20(ARENA_OUTCOMES)["score"])
    assert metrics["arena_hard_ci_low"] <= metrics["arena_hard"] <= metrics["arena_hard_ci_high"]
    assert metrics["arena_hard_judge_calls"] == 2 * ARENA_N and metrics["arena_hard_version"] == "v2.0"
    # RewardBench v1 on the final reward model, in percent as the tables print it.
    saved = json.loads((run / metrics["reward_bench_results"]).read_text())
    assert metrics["reward_bench_average"] == pytest.approx(100 * saved["scores"]["overall"], abs=0.01)
    assert {"reward_bench_chat", "reward_bench_chat_hard", "reward_bench_safety", "reward_bench_reasoning"} <= set(
        metrics) and metrics["reward_bench_partial"] is True
    assert "reward_bench_judge_calls" not in metrics
    # Judge usage from the API's usage field, and the data each benchmark used.
    used = metrics["alpaca_eval_judge_prompt_tokens"] + metrics["arena_hard_judge_prompt_tokens"]
    assert used == server.prompt_tokens and metrics["arena_hard_judge_completion_tokens"] > 0
    assert metrics["alpaca_eval_data"] == str(files["alpaca"]) and metrics["reward_bench_data"] == str(files["pairs"])
    assert metrics["alpaca_eval_judge"] == f"openai:judge-model@{server.url}"

    # The benchmarks' files persist outside the stage folder; the stage keeps the plan and the results.
    for name in ("alpaca-eval", "arena-hard", "reward-bench"):
        assert (run / "bench" / "iter_1" / name).is_dir()
    assert (run / "bench" / "iter_1" / "alpaca-eval" / "judge_cache.jsonl").exists()
    record = json.loads((run / "iter_1" / "evaluate" / "benchmarks.json").read_text())
    assert [p["benchmark"] for p in record["plan"]] == ["alpaca-eval", "arena-hard", "reward-bench"]
    assert set(record["results"]) == {"alpaca-eval", "arena-hard", "reward-bench"}
    judgments = list((run / "bench" / "iter_1" / "arena-hard" / "model_judgment").rglob("*.jsonl"))
    assert [p.name for p in judgments] == ["demo-iter_1.jsonl"]  # named after the run, not "policy"

    # A second invocation (a new process) finds the stage done: nothing runs.
    again, ran = evaluate_stage(run, cfg, policy, reward)
    assert not ran and again == metrics and server.answered == JUDGE_CALLS
    # The stage's results deleted, the bench folder kept: the evaluation reruns without asking the judge.
    shutil.rmtree(run / "iter_1" / "evaluate")
    rerun, ran = evaluate_stage(run, cfg, policy, reward)
    assert ran and server.answered == JUDGE_CALLS
    assert rerun["alpaca_eval_judge_calls"] == 0 and rerun["alpaca_eval_judge_cache_hits"] == ALPACA_N
    assert rerun["arena_hard_judge_calls"] == 0 and rerun["arena_hard_judge_cache_hits"] == 2 * ARENA_N
    assert rerun["arena_hard_judge_prompt_tokens"] == 0
    for key in ("alpaca_eval_lc", "alpaca_eval_win_rate", "arena_hard", "arena_hard_ci_low", "reward_bench_average"):
        assert rerun[key] == metrics[key]


def test_an_evaluation_killed_while_judging_resumes_without_asking_again(tiny_models, files, server, tmp_path):
    policy, reward = tiny_models
    cfg = config(files, server.url, "bench.judge_concurrency=1", 'bench.benchmarks=["alpaca-eval", "arena-hard"]')
    run = tmp_path / "run"
    server.stop_after(3)  # the judge goes away after three answers, in the middle of AlpacaEval
    with pytest.raises(JudgeError, match="the judge went away"):
        evaluate_stage(run, cfg, policy, reward)
    assert (run / "iter_1" / "evaluate.partial").exists() and not (run / "iter_1" / "evaluate").exists()
    cache = run / "bench" / "iter_1" / "alpaca-eval" / "judge_cache.jsonl"
    assert len(cache.read_text().splitlines()) == 3

    server.stop_after(None)
    metrics, ran = evaluate_stage(run, cfg, policy, reward)
    assert ran and server.answered == JUDGE_CALLS  # 3 before the kill, the other 11 after: none asked twice
    assert metrics["alpaca_eval_judge_calls"] == ALPACA_N - 3 and metrics["alpaca_eval_judge_cache_hits"] == 3
    assert metrics["arena_hard_judge_calls"] == 2 * ARENA_N
    results = json.loads((run / metrics["alpaca_eval_results"]).read_text())
    assert results["generation"]["source"] == "reused"  # the answers made before the kill are not made again
    assert not (run / "iter_1" / "evaluate.partial").exists()


def test_the_plan_counts_examples_and_judge_calls_without_a_model_or_a_judge(files, tmp_path):
    v01 = arena_repo(tmp_path / "v01", "v0.1", n=ARENA_N)
    cfg = config(files, "http://127.0.0.1:9/v1", f"bench.arena_hard.data={v01}", "bench.alpaca_eval.limit=4",
                 "bench.reward_bench.limit=5")
    plan = {row["benchmark"]: row for row in plan_evaluation(cfg)}
    assert plan["alpaca-eval"] | {"output": None} == {
        "benchmark": "alpaca-eval", "model": "final policy", "judge": "openai:judge-model@http://127.0.0.1:9/v1",
        "data": str(files["alpaca"]), "examples": 4, "judge_calls": 4, "judge_calls_max": 4, "output": None}
    # v0.1: two games per question and at most one follow-up turn per game.
    assert (plan["arena-hard"]["examples"], plan["arena-hard"]["judge_calls"], plan["arena-hard"]["judge_calls_max"]
            ) == (ARENA_N, 2 * ARENA_N, 4 * ARENA_N) and "v0.1" in plan["arena-hard"]["data"]
    assert plan["reward-bench"]["judge"] == "none" and plan["reward-bench"]["judge_calls"] == 0
    assert plan["reward-bench"]["examples"] == 5 and plan["reward-bench"]["model"] == "final reward model"
    assert plan["reward-bench"]["output"] == "bench/iter_<t>/reward-bench"

    # Hub sources are not contacted: their official sizes stand in, labelled.
    hub = config(files, "http://127.0.0.1:9/v1", "bench.alpaca_eval.data=tatsu-lab/alpaca_eval",
                 "bench.reward_bench.data=allenai/reward-bench", 'bench.benchmarks=["alpaca-eval", "reward-bench"]')
    plan = {row["benchmark"]: row for row in plan_evaluation(hub)}
    assert plan["alpaca-eval"]["examples"] == 805 and "hub tatsu-lab/alpaca_eval" in plan["alpaca-eval"]["data"]
    assert plan["reward-bench"]["examples"] == sum(rbm.EXPECTED_PAIRS.values())

    # Scoring existing judgments asks no judge, so it needs none.
    judgments = tmp_path / "judgments.jsonl"
    write_jsonl(judgments, [{"uid": "u0", "model": "m", "games": [{"score": "A>B"}, {"score": "B>A"}]}])
    scored = config(files, None, 'bench.benchmarks=["arena-hard"]', f"bench.arena_hard.options.judgments={judgments}")
    (row,) = plan_evaluation(scored)
    assert (row["judge"], row["examples"], row["judge_calls"]) == ("none", 1, 0)


@pytest.mark.parametrize(("extra", "error", "message"), [
    (["bench.judje=openai:x"], ConfigError, "unknown config key 'bench.judje'"),
    (["bench.arena_hard.options.rounds=0"], ConfigError, "bench.arena_hard.options.rounds=0: expected >= 1"),
    (["bench.arena_hard.options.colour=red"], ConfigError, "unknown config key 'bench.arena_hard.options.colour'"),
    (["bench.reward_bench.options.version=3"], ConfigError, "bench.reward_bench.options.version=3: expected one of"),
    (['bench.benchmarks=["mt-bench"]'], ConfigError, "unknown benchmark 'mt-bench'; known: alpaca-eval"),
    (["bench.judge=gpt-4"], InputError, "--judge 'gpt-4': expected one of"),
    (["bench.reward_bench.data=/no/such/pairs.jsonl"], InputError, "/no/such/pairs.jsonl: file not found"),
    (["bench.arena_hard.data=/no/such/arena"], InputError, "no question.jsonl under /no/such/arena"),
])
def test_bench_config_is_checked_before_any_training(files, extra, error, message):
    from reproduce.runner import environment

    cfg = config(files, "http://127.0.0.1:9/v1", *extra)
    with pytest.raises(error, match=message.replace("[", r"\[").replace(".", r"\.")):
        environment(cfg)  # what `train` and every table cell build before the first stage


def test_judged_benchmarks_need_a_judge_and_the_config_layers_merge(files):
    with pytest.raises(ConfigError, match="alpaca-eval needs a judge; set bench.judge"):
        load_bench_config(config(files, None))
    bench = load_bench_config(config(files, None, "bench.alpaca_eval.judge=openai:a@http://h:1/v1",
                                     "bench.arena_hard.judge=transformers:org/judge", "bench.alpaca_eval.limit=2"))
    assert isinstance(bench, BenchConfig)
    assert bench.judge_of("alpaca-eval") == "openai:a@http://h:1/v1" and bench.judge_of("arena-hard") == (
        "transformers:org/judge") and bench.judge_of("reward-bench") is None
    # A --set inside a table keeps the table's other keys (the data path set earlier in the layers).
    assert bench.alpaca_eval.limit == 2 and bench.alpaca_eval.data == str(files["alpaca"])
    assert bench.alpaca_eval.options.lc_files == str(files["lc"]) and bench.arena_hard.options.token_counter == "policy"


def test_the_wrapper_delegates_everything_but_the_evaluation(files):
    cfg = config(files, "http://127.0.0.1:9/v1", "data.prompts=my-prompts.jsonl")
    inner = PromptEnvironment(cfg)
    env = BenchmarkEvaluation(inner, cfg)
    assert inner.evaluation == "none" and env.evaluation == "final"
    assert (env.name, env.gold, env.initial_models(), env.heldout_prompts(), env.preference_pairs()) == (
        "prompts", None, inner.initial_models(), [], None)
    assert env.cfg is cfg and env.env is inner and env.evaluate.__func__ is BenchmarkEvaluation.evaluate


def test_flat_metrics_name_every_number_the_tables_read():
    result = {"scores": {"win_rate": 40.0, "standard_error": 2.0, "n": 5, "lc_win_rate_no_difficulty": 42.0,
                         "lc_standard_error": 1.0}, "lc_official": False, "parse": {"failed": 1},
              "annotator": {"name": "x"}, "data": "d.json", "partial": True,
              "judge": {"judge": "j", "judge_calls": 4, "cache_hits": 1, "prompt_tokens": 10,
                        "completion_tokens": 2, "seconds": 0.5, "estimated_cost": 0.01}}
    flat = flat_metrics("alpaca-eval", result)
    assert flat["alpaca_eval_lc"] == 42.0 and flat["alpaca_eval_lc_official"] is False  # labelled, not hidden
    assert (flat["alpaca_eval_judge_calls"], flat["alpaca_eval_judge_cache_hits"], flat["alpaca_eval_judge_cost"]) == (
        4, 1, 0.01)
    rb = flat_metrics("reward-bench", {"scores": {"overall": 0.5, "sections": {"Chat": 0.25, "Chat Hard": None}},
                                       "version": 1, "truncated": 0, "data": {"source": "p.jsonl"}, "partial": False})
    assert rb == {"reward_bench_average": 50.0, "reward_bench_version": 1, "reward_bench_truncated": 0,
                  "reward_bench_chat": 25.0, "reward_bench_chat_hard": None, "reward_bench_data": "p.jsonl",
                  "reward_bench_partial": False}


def test_the_loop_evaluates_the_final_models_once(files, tmp_path, monkeypatch):
    """On the stub engine (tests/stubs.py): evaluate runs once, after the loop, on pi_T and r_T, into the summary."""
    from stubs import BASE, StubEnv, model_name, stub_run
    from test_loop_wiring import ANSWERS, SCORES, SELECTION, TRAIN

    from bench.registry import Benchmark

    calls = []

    def fake_run(self, request, reporter=None):
        calls.append((self.name, model_name(request.model), request.out))
        Path(request.out).mkdir(parents=True, exist_ok=True)
        usage = {"judge": "j", "judge_calls": 1, "cache_hits": 0, "prompt_tokens": None, "completion_tokens": None,
                 "seconds": 0.0, "estimated_cost": None}
        if self.name == "alpaca-eval":
            return {"scores": {"win_rate": 60.0, "n": 6, "lc_win_rate": 55.0}, "lc_official": True, "parse": {
                "failed": 0}, "annotator": {"name": "a"}, "data": "d", "partial": False, "judge": usage,
                "path": str(Path(request.out) / "results.json")}
        return {"scores": {"overall": 0.7, "sections": {"Chat": 0.7}}, "version": 1, "truncated": 0,
                "data": {"source": "p"}, "partial": True, "path": str(Path(request.out) / "reward_bench.json")}

    monkeypatch.setattr(Benchmark, "run", fake_run)
    overrides = bench_overrides(files, "http://127.0.0.1:9/v1", 'bench.benchmarks=["alpaca-eval", "reward-bench"]')
    cfg = load_config(None, overrides=[*BASE, *overrides])
    env = BenchmarkEvaluation(StubEnv(TRAIN, SELECTION), cfg)
    result, _ = stub_run(tmp_path, env, ANSWERS, SCORES, overrides)
    run = tmp_path / "run"
    assert [(name, model) for name, model, _ in calls] == [("alpaca-eval", "pi1@4"), ("reward-bench", "r1")]
    assert [out for *_, out in calls] == [run / "bench" / "iter_1" / "alpaca-eval", run / "bench" / "iter_1" /
                                          "reward-bench"]
    assert not (run / "iter_0" / "evaluate").exists()  # no per-iteration measurements
    final = result.rows[-1]
    assert final["iteration"] == 1 and final["alpaca_eval_lc"] == 55.0 and final["reward_bench_average"] == 70.0


def test_the_readme_bench_table_is_a_valid_config():
    import tomllib

    from mt.config import load_section

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### The benchmark evaluation of a training run"):]
    block = section[section.index("```toml") + len("```toml"): section.index("```", section.index("```toml") + 7)]
    bench = load_section(BenchConfig, tomllib.loads(block)["bench"], "bench.")
    assert bench.arena_hard.options.version == "v0.1" and bench.reward_bench.limit == 500
