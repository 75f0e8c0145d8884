"""One registry of benchmarks: ``mt-repro bench NAME`` looks the name up here.

A benchmark is a function from a ``BenchRequest`` (what the user asked for on the command line)
to a result dict that holds the scores, the leaderboard rows and everything needed to redo the
run. Adding a benchmark is one module that calls ``register`` and one import line in ``load_all``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt.progress import QUIET, Reporter
from mt.registry import Registry


@dataclass
class BenchRequest:
    """What a user asks a benchmark for; every adapter reads the fields it needs and ignores the rest."""

    model: str  # a folder or hub id: a causal LM (policy benchmarks) or a one-logit RM (reward-bench)
    out: Path  # results, generations and the judge cache are written here
    data: str | None = None  # the benchmark's data: a path or hub id; None = the adapter's default source
    judge: Any = None  # a bench.judges.Judge for judged benchmarks
    limit: int | None = None  # evaluate the first N examples only (a partial run is labelled as such)
    backend: str = "transformers"  # generation backend of mt.generate
    batch_size: int = 16
    max_new_tokens: int = 1024
    temperature: float = 0.0  # 0 = greedy, as the leaderboards generate
    seed: int = 0
    dtype: str = "auto"
    options: dict[str, str] = field(default_factory=dict)  # adapter-specific --option key=value


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    needs_judge: bool
    model_kind: str  # "policy" or "reward"
    run: Callable[[BenchRequest, Reporter], dict[str, Any]]
    options_help: dict[str, str] = field(default_factory=dict)  # --option keys and what they mean


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def known_options(benchmark: str, options: dict[str, str], known: dict[str, str],
                  casts: dict[str, type] | None = None) -> dict[str, Any]:
    """The non-empty --option values, cast to their types; an unknown key or a bad value is one error."""
    from mt.records import InputError

    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"{benchmark}: unknown --option {unknown[0]!r}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {k: v for k, v in options.items() if v != ""}
    for key, kind in (casts or {}).items():
        if key in values:
            try:
                values[key] = kind(values[key])
            except ValueError:
                raise InputError(f"{benchmark}: --option {key}={values[key]!r}: expected {kind.__name__}") from None
    return values


def register(benchmark: Benchmark) -> Benchmark:
    return BENCHMARKS.register(benchmark.name)(benchmark)


def load_all() -> Registry[Benchmark]:
    """Import every adapter (each registers itself) and return the registry."""
    from . import alpaca_eval, arena_hard, reward_bench  # noqa: F401  (registration)

    return BENCHMARKS


def run_benchmark(name: str, request: BenchRequest, reporter: Reporter = QUIET) -> dict[str, Any]:
    return load_all().get(name).run(request, reporter)
