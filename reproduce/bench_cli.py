"""`mt-repro bench NAME`: benchmark any checkpoint, ours or a hub id, with a local or remote judge.

One command per benchmark declared in ``bench.catalog`` (built from the registry, which imports no
adapter, so ``--help`` stays fast). Each parses its options into the benchmark's typed dataclass,
calls the adapter, and prints its leaderboard: the adapter's own row and the benchmark's reference
rows, plus the Mutual-Taught paper's published rows that this layer adds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.registry import Benchmark, load_all

from .console import console, quiet_libraries, table, user_errors

bench_app = typer.Typer(help="Benchmark a checkpoint: AlpacaEval 2 (LC), Arena-Hard, RewardBench.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

# Options that name files to score instead of a model to run: without --model, the output folder is named
# after the first one given.
FILE_OPTIONS = ("annotations", "judgments", "answers", "outputs")
SORT_KEY = {"alpaca-eval": "lc_win_rate", "arena-hard": "score"}


def parse_options(items: list[str] | None) -> dict[str, str]:
    """``key=value`` pairs of --option; anything else is one error naming the bad item."""
    from mt.records import InputError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def _judge(spec: str | None, base_url: str | None, api_key_env: str, concurrency: int, needed: bool, name: str):
    from mt.records import InputError

    if not needed:
        if spec is not None:
            console.print(f"[dim]{name}: scoring existing files asks no judge; --judge {spec} is not used[/]")
        return None
    if spec is None:
        raise InputError(f"{name} needs a judge: give --judge openai:MODEL (with --judge-base-url for a local "
                         f"OpenAI-compatible server such as vLLM) or --judge transformers:PATH")
    from bench.judges import load_judge

    return load_judge(spec, base_url=base_url, api_key_env=api_key_env, max_concurrency=concurrency)


# ---------------------------------------------------------------------------------------------- published rows


def paper_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The Mutual-Taught paper's published rows that belong beside this benchmark's result, with sources."""
    from reproduce.published import load_published

    name, rows = result["benchmark"], []
    if name == "alpaca-eval":
        for row in load_published("table1"):
            if row.get("ae2_lc") is not None:
                rows.append({"model": row["label"], "lc_win_rate": row["ae2_lc"], "win_rate": None,
                             "standard_error": None, "annotator": "weighted_alpaca_eval_gpt4_turbo (as published)",
                             "source": f"Mutual-Taught Table 1 ({row['source']})"})
    elif name == "arena-hard":
        other = "" if result.get("version") == "v0.1" else "; other version, not comparable"
        for row in load_published("table1"):
            if row.get("arena_hard") is not None:
                rows.append({"model": row["label"], "score": row["arena_hard"], "ci_low": None, "ci_high": None,
                             "version": "v0.1", "source": f"Mutual-Taught Table 1 ({row['source']}){other}"})
    elif name == "reward-bench" and result.get("version") == 1:
        rows = [{"model": r["key"], "label": r["label"], "chat": r["chat"], "chat_hard": r["chat_hard"],
                 "safety": r["safety"], "reasoning": r["reasoning"], "average": r["average"], "source": r["source"]}
                for r in load_published("table2")]
    return rows


def with_paper_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The adapter's leaderboard and the paper's rows, best first where the benchmark has one score."""
    rows = [*(result.get("leaderboard") or []), *paper_rows(result)]
    key = SORT_KEY.get(result["benchmark"])
    if key:
        rows.sort(key=lambda r: -(r[key] if r.get(key) is not None else -math.inf))
    return rows


# ---------------------------------------------------------------------------------------------- rendering


def usage_line(usage: dict[str, Any] | None) -> str | None:
    """One line of judge usage: calls, cache hits, tokens, time and the estimated cost."""
    if not usage or not usage.get("judge"):
        return None
    tokens = "" if usage.get("prompt_tokens") is None else (
        f", {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens")
    cost = "" if usage.get("estimated_cost") is None else f", estimated cost {usage['estimated_cost']:.4f}"
    return (f"judge {usage['judge']}: {usage['judge_calls']} calls, {usage['cache_hits']} from the cache"
            f"{tokens}, {usage['seconds']:.1f} s{cost}")


def render_result(result: dict[str, Any]) -> None:
    rows = with_paper_rows(result)
    who = result.get("model") or result.get("generator") or result.get("name")
    title = f"{result['benchmark']}: {who}" + (" (partial run)" if result.get("partial") else "")
    if rows:
        console.print(table(rows, title=title))
    for line in [*result.get("notes", []), usage_line(result.get("judge"))]:
        if line:
            console.print(f"[dim]{line}[/]")
    console.print(f"results: [cyan]{result['path']}[/]")


# ---------------------------------------------------------------------------------------------- commands


def _default_out(name: str, model: str | None, options: Any) -> Path:
    label = Path(model.rstrip("/")).name if model else next(
        (Path(getattr(options, k)).stem for k in FILE_OPTIONS if getattr(options, k, None)), "scored")
    return Path("results") / "bench" / name / label


def _command(spec: Benchmark):
    name = spec.name

    def command(
        model: Annotated[str | None, typer.Option(
            help="Checkpoint to benchmark: a folder or a hub id (not needed to score existing files).")] = None,
        judge: Annotated[str | None, typer.Option(
            help="openai:MODEL or openai:MODEL@BASE_URL (any OpenAI-compatible endpoint), or transformers:PATH.")] = None,
        judge_base_url: Annotated[str | None, typer.Option(
            help="Base URL of an OpenAI-compatible server (default $OPENAI_BASE_URL or api.openai.com).")] = None,
        judge_api_key_env: Annotated[str, typer.Option(
            help="Environment variable holding the judge's API key (never logged).")] = "OPENAI_API_KEY",
        judge_concurrency: Annotated[int, typer.Option(help="Judge requests in flight at once.", min=1)] = 8,
        data: Annotated[str | None, typer.Option(help="Benchmark data: a path or a hub id (default: the adapter's "
                                                      "official source).")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the first N examples (the result says partial).",
                                                  min=1)] = None,
        out: Annotated[Path | None, typer.Option(help="Output folder; default results/bench/<name>/<model>.")] = None,
        backend: Annotated[str, typer.Option(help="Generation backend: transformers or vllm.")] = "transformers",
        batch_size: Annotated[int, typer.Option(help="Prompts (or pairs) per batch.", min=1)] = 16,
        max_new_tokens: Annotated[int, typer.Option(help="Answer length cap.", min=1)] = 1024,
        temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.", min=0)] = 0.0,
        seed: Annotated[int, typer.Option(help="Seed of generation and any randomised step.")] = 0,
        option: Annotated[list[str] | None, typer.Option(
            "--option", "-o", help="Benchmark option KEY=VALUE (repeatable); listed below and by "
                                   "`mt-repro bench list`.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    ):
        from bench.registry import BenchRequest
        from mt.progress import Reporter

        with user_errors():
            options = spec.parse_options(parse_options(option))
            request = BenchRequest(
                model=model, out=out or _default_out(name, model, options), data=data, limit=limit,
                backend=backend, batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature,
                seed=seed, options=options,
                judge=_judge(judge, judge_base_url, judge_api_key_env, judge_concurrency, options.uses_judge(), name))
            quiet_libraries()
            with Reporter(enabled=not quiet) as reporter:
                result = spec.run(request, reporter)
            render_result(result)

    keys = ", ".join(row["option"] for row in spec.option_rows())
    command.__doc__ = (f"{spec.description}\n\nNeeds a judge: {spec.judge}. Options (--option KEY=VALUE): {keys}; "
                       f"`mt-repro bench list` explains each.")
    return command


for _name in load_all():
    bench_app.command(_name)(_command(load_all().get(_name)))


@bench_app.command("list")
def bench_list():
    """The registered benchmarks, what they need, and their --option keys (type, default, meaning)."""
    registry = load_all()
    console.print(table([{"benchmark": n, "model": registry.get(n).model_kind, "judge": registry.get(n).judge,
                          "what it measures": registry.get(n).description} for n in registry], title="benchmarks"))
    for n in registry:
        console.print(table(registry.get(n).option_rows(), title=f"{n} --option KEY=VALUE"))
