"""`mt-repro bench NAME`: benchmark any checkpoint, ours or a hub id, with a local or remote judge.

One command per registered benchmark, built from ``bench.registry``; each parses its options,
calls the adapter's ``run`` and prints a leaderboard with the published reference rows beside ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .console import console, quiet_libraries, table, user_errors

bench_app = typer.Typer(help="Benchmark a checkpoint: AlpacaEval 2 (LC), Arena-Hard, RewardBench.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

BENCH_HELP = {
    "alpaca-eval": "AlpacaEval 2: generate on the 805 instructions, judge against the reference outputs, "
                   "win rate and length-controlled win rate (alpaca_eval's own GLM).",
    "arena-hard": "Arena-Hard: answer the questions, two judged games per question (positions swapped), "
                  "Bradley-Terry score against the baseline with a bootstrap CI; optional style control.",
    "reward-bench": "RewardBench: score (prompt, chosen, rejected) with a one-logit RM; per-subset accuracy, "
                    "section scores with the official weights, overall mean.",
}


def parse_options(items: list[str] | None) -> dict[str, str]:
    """``key=value`` pairs of --option; anything else is one error naming the bad item."""
    from mt.records import InputError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--option {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def _judge(spec: str | None, base_url: str | None, api_key_env: str, concurrency: int, needed: bool, name: str):
    from mt.records import InputError

    if spec is None:
        if needed:
            raise InputError(f"{name} needs a judge: give --judge openai:MODEL (with --judge-base-url for a local "
                             f"OpenAI-compatible server such as vLLM) or --judge transformers:PATH")
        return None
    from bench.judges import load_judge

    return load_judge(spec, base_url=base_url, api_key_env=api_key_env, max_concurrency=concurrency)


def render_result(result: dict[str, Any]) -> None:
    rows = result.get("leaderboard") or []
    title = f"{result['benchmark']}: {result['model']}" + (" (partial run)" if result.get("partial") else "")
    if rows:
        console.print(table(rows, title=title))
    for line in result.get("notes", []):
        console.print(f"[dim]{line}[/]")
    console.print(f"results: [cyan]{result['path']}[/]")


def _command(name: str):
    def command(
        model: Annotated[str, typer.Option(help="Checkpoint to benchmark: a folder or a hub id.")],
        judge: Annotated[str | None, typer.Option(
            help="openai:MODEL or openai:MODEL@BASE_URL (any OpenAI-compatible endpoint), or transformers:PATH.")] = None,
        judge_base_url: Annotated[str | None, typer.Option(
            help="Base URL of an OpenAI-compatible server (default $OPENAI_BASE_URL or api.openai.com).")] = None,
        judge_api_key_env: Annotated[str, typer.Option(
            help="Environment variable holding the judge's API key (never logged).")] = "OPENAI_API_KEY",
        judge_concurrency: Annotated[int, typer.Option(help="Judge requests in flight at once.")] = 8,
        data: Annotated[str | None, typer.Option(help="Benchmark data: a path or a hub id (default: the adapter's "
                                                      "official source; see `mt-repro bench list`).")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the first N examples (the result says partial).")] = None,
        out: Annotated[Path | None, typer.Option(help="Output folder; default results/bench/<name>/<model>.")] = None,
        backend: Annotated[str, typer.Option(help="Generation backend: transformers or vllm.")] = "transformers",
        batch_size: Annotated[int, typer.Option(help="Prompts (or pairs) per batch.")] = 16,
        max_new_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 1024,
        temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 = greedy.")] = 0.0,
        seed: Annotated[int, typer.Option(help="Seed of generation and any randomised step.")] = 0,
        option: Annotated[list[str] | None, typer.Option(
            "--option", "-o", help="Adapter option key=value (repeatable); `mt-repro bench list` shows them.")] = None,
        quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    ):
        quiet_libraries()
        from bench.registry import BenchRequest, load_all
        from mt.progress import Reporter

        with user_errors():
            spec = load_all().get(name)
            target = out or Path("results") / "bench" / name / Path(model).name
            request = BenchRequest(
                model=model, out=target, data=data, limit=limit, backend=backend, batch_size=batch_size,
                max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, options=parse_options(option),
                judge=_judge(judge, judge_base_url, judge_api_key_env, judge_concurrency, spec.needs_judge, name))
            with Reporter(enabled=not quiet) as reporter:
                result = spec.run(request, reporter)
        render_result(result)

    command.__doc__ = BENCH_HELP[name]
    return command


for _name in BENCH_HELP:
    bench_app.command(_name)(_command(_name))


@bench_app.command("list")
def bench_list():
    """The registered benchmarks, what they need, and their --option keys."""
    from bench.registry import load_all

    registry = load_all()
    rows = [{"benchmark": n, "model": registry.get(n).model_kind, "judge": "yes" if registry.get(n).needs_judge
             else "no", "options": "; ".join(f"{k}: {v}" for k, v in registry.get(n).options_help.items())}
            for n in registry]
    console.print(table(rows, title="benchmarks"))
