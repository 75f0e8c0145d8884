"""One registry of benchmarks: ``mt-repro bench NAME`` and the benchmark evaluation look names up here.

A ``Benchmark`` is a declaration: its name, what it measures, which model it takes, whether it asks a
judge, its typed options, and where its adapter lives. Declaring one imports nothing heavy, so the CLI
lists and builds its commands in milliseconds; the adapter module (transformers, alpaca_eval, ...) is
imported when the benchmark runs. Adding a benchmark is one adapter module and one ``register`` call
in ``bench/catalog.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mt.options import ConfigError, load_section, range_text
from mt.registry import Registry

if TYPE_CHECKING:  # mt.progress imports transformers: the registry must stay light
    from mt.progress import Reporter


@dataclass
class BenchRequest:
    """What a user asks a benchmark for; every adapter reads the fields it needs and ignores the rest."""

    model: str | None  # a folder or hub id: a causal LM (policy benchmarks) or a one-logit RM (reward-bench)
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
    # The benchmark's typed options (its dataclass in bench.catalog), or --option key=value strings.
    options: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    model_kind: str  # "policy" or "reward"
    options: type  # dataclass of its --option keys; help, choices and ranges in each field's metadata
    runner: str  # "module:function" of the adapter's run(request, reporter), imported when it runs
    judge: str = "no"  # what the listing says about judges, e.g. "yes, unless judgments=FILE"

    def parse_options(self, values: Mapping[str, Any] | Any, prefix: str = "--option ") -> Any:
        """The typed options from ``key=value`` strings (or a table), each checked; an instance passes."""
        if isinstance(values, self.options):
            return values
        known = [f.name for f in dataclasses.fields(self.options)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{self.name}: unknown {prefix.strip()} {unknown[0]!r}; known: {', '.join(known)}")
        return load_section(self.options, {k: v for k, v in values.items() if v != ""}, prefix)

    def run(self, request: BenchRequest, reporter: Reporter | None = None) -> dict[str, Any]:
        """Check the options, import the adapter, run it."""
        request = dataclasses.replace(request, options=self.parse_options(request.options))
        module, _, function = self.runner.partition(":")
        adapter = getattr(importlib.import_module(module), function)
        if reporter is None:
            from mt.progress import QUIET as reporter
        return adapter(request, reporter)

    def option_rows(self) -> list[dict[str, str]]:
        """Rows (option, type, default, help) for ``mt-repro bench list`` and each command's help."""
        hints = typing.get_type_hints(self.options)
        rows = []
        for f in dataclasses.fields(self.options):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            allowed = (", ".join(map(str, f.metadata["choices"])) if "choices" in f.metadata
                       else range_text(f.metadata))
            rows.append({"option": f.name, "type": _type_name(hints[f.name]),
                         "default": ",".join(default) if isinstance(default, list | tuple) else str(default),
                         "help": f.metadata.get("help", "") + (f" Allowed: {allowed}." if allowed else "")})
        return rows


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(args[0])}"
    if args:
        return _type_name(args[0])
    return getattr(tp, "__name__", str(tp))


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register(benchmark: Benchmark) -> Benchmark:
    return BENCHMARKS.register(benchmark.name)(benchmark)


def load_all() -> Registry[Benchmark]:
    """The registry with every benchmark declared (``bench.catalog`` registers them; adapters stay unimported)."""
    from . import catalog  # noqa: F401  (registration)

    return BENCHMARKS


def get(name: str) -> Benchmark:
    return load_all().get(name)


def run_benchmark(name: str, request: BenchRequest, reporter: Reporter | None = None) -> dict[str, Any]:
    return get(name).run(request, reporter)


def options_of(request: BenchRequest, name: str) -> Any:
    """The request's options typed (adapters called directly may get a dict of strings)."""
    return get(name).parse_options(request.options)
