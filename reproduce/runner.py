"""The one place that builds a run: the config's environment, the method's parts, the engine.

``mt-repro train`` and every table cell go through ``run_method``, so a cell is exactly what a user
would get from ``train --method NAME`` with the same config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mt.config import ConfigError, MTConfig
from mt.engine import Engine
from mt.env import Environment, PromptEnvironment, environment_identity
from mt.loop import RunResult, evaluate, run_mutual_taught
from mt.method import Run
from mt.progress import QUIET, Reporter
from mt.registry import Registry

ENVIRONMENTS: Registry[Callable[[MTConfig, Reporter], Environment]] = Registry("environment")


@ENVIRONMENTS.register("prompts")
def _prompts(cfg: MTConfig, reporter: Reporter) -> Environment:
    return PromptEnvironment(cfg)


@ENVIRONMENTS.register("world")
def _world(cfg: MTConfig, reporter: Reporter) -> Environment:
    from mt.world.environment import WorldEnvironment

    return WorldEnvironment(cfg, reporter)


def environment(cfg: MTConfig, reporter: Reporter = QUIET) -> Environment:
    """The config's environment; with ``run.evaluation=benchmarks`` its models are measured by the benchmarks.

    The benchmarks' settings, judges and local files are checked first: building an environment may take
    minutes (the gold world is built on first use).
    """
    plan = None
    if cfg.run.evaluation == "benchmarks":
        from bench.environment import load_bench_config, plan_evaluation

        bench = load_bench_config(cfg)
        plan = (bench, plan_evaluation(cfg, bench))
    env = ENVIRONMENTS.get(cfg.run.env)(cfg, reporter)
    if plan is not None:
        from bench.environment import BenchmarkEvaluation

        env = BenchmarkEvaluation(env, cfg, reporter, *plan)
    return env


def evaluate_initial(cfg: MTConfig, run_dir: str | Path, reporter: Reporter = QUIET) -> dict:
    """The evaluation of pi_0 and r_0 alone: the stage ``iter_0/evaluate`` of a run with no iterations."""
    engine = Engine(cfg, run_dir, reporter)
    try:
        env = environment(cfg, reporter)
        engine.rd.bind_environment(environment_identity(env))
        run = Run(engine, env, env.initial_models())
        evaluate(run, 0, run.initial, final=env.evaluation == "final")
        return engine.rd.done_record(0, "evaluate")["metrics"] if engine.rd.is_done(0, "evaluate") else {}
    finally:
        engine.close()


def run_method(cfg: MTConfig, method: str, run_dir: str | Path, reporter: Reporter = QUIET,
               command: list[str] | None = None, launcher: Sequence[str] | None = None) -> RunResult:
    """Run (or resume, or read back) the registered ``method`` with ``cfg`` in ``run_dir``.

    Everything that can be checked on the disk (the run directory, the models, the prompt file, ...) is checked
    before the environment is built, a model loads or a hub is asked.
    """
    from mt.checks import check_run_inputs

    from .methods import METHODS

    spec = METHODS.get(method)
    parts = spec.method(cfg)
    check_run_inputs(cfg, run_dir, launcher)
    env = environment(cfg, reporter)
    # Before any work: a method whose parts read gold, or an M-step told to label by gold (the oracle control).
    reads_gold = (f"method {method!r}" if spec.needs_gold else
                  "mstep.labels=gold" if cfg.mstep.enabled and cfg.mstep.labels == "gold" else None)
    if reads_gold and env.gold is None:
        raise ConfigError(f"{reads_gold} needs an environment with a gold reward (run.env=world, the gold world); "
                          f"run.env={cfg.run.env} has none")
    return run_mutual_taught(cfg, run_dir, reporter, env, parts, command, launcher)
