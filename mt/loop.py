"""The Mutual-Taught EM loop over a run directory, in the paper's order.

    for t = 1..T:
        E-step   sample K responses from pi_{t-1} on the PM part, label them with r_{t-1},
                 build pairs, DPO from pi_{t-1}                     -> candidate checkpoints
        select   each candidate vs pi_{t-1} on the selection set, judged by r_{t-1};
                 keep the best, or stop when it wins less than tau  -> pi_t
        M-step   y_t ~ pi_t and y_{t-1} ~ pi_{t-1} on the RM part, margin under r_{t-1},
                 variance-adaptive filter, Bradley-Terry update     -> r_t

Every step is a stage of the run directory: done stages are read back, never redone, so rerunning
the same command resumes where the last one stopped. What is evaluated (the gold world, the
benchmarks, nothing) is the environment's business; what each step does is the method's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import MTConfig
from .data import part_for, prepare_splits
from .engine import Engine, Models, StageError, stage_seed
from .env import Environment, PromptEnvironment, environment_identity
from .estep import estep
from .method import MUTUAL_TAUGHT, Method, Run
from .progress import QUIET, Reporter
from .records import write_json
from .rundir import RunDir, StageContext
from .select import select

__all__ = ["Models", "RunResult", "StageError", "run_loop", "run_mutual_taught", "stage_seed"]


@dataclass
class RunResult:
    run_dir: Path
    policy: str
    reward: str
    iterations_done: int
    stopped: bool
    rows: list[dict[str, Any]] = field(default_factory=list)


def run_loop(run: Run, method: Method = MUTUAL_TAUGHT) -> RunResult:
    cfg, engine = run.cfg, run.engine
    engine.rd.bind_environment(environment_identity(run.env))
    splits = prepare_splits(run)
    models = method.prepare(run, run.initial) if method.prepare else run.initial
    evaluate(run, 0, models)
    stopped, done = False, 0
    for t in range(1, cfg.run.iterations + 1):
        engine.reporter.log(f"[bold]iteration {t}[/bold]: PM on {part_for(t, cfg.data.pm_parts)}, "
                            f"RM on {part_for(t, cfg.data.rm_parts)}")
        start = Models(method.start_policy(run, t, models), models.reward)
        candidates, pairs = estep(run, method, t, start, method.policy_prompts(run, t, start, splits))
        decision = select(run, t, start, candidates, splits["selection"], method.judge)
        if decision["stop"]:
            stopped = True
            engine.reporter.log(f"iteration {t}: stop rule fired (best win rate {decision['win_rate']:.3f} "
                                f"< tau {cfg.select.tau}); pi_{t - 1} is final")
            break
        policy, reward = engine.abs(decision["policy"]), start.reward
        if cfg.mstep.enabled and method.reward_update is not None:
            rm_prompts = splits[part_for(t, cfg.data.rm_parts)]
            reward = engine.abs(method.reward_update(run, t, start, policy, rm_prompts, pairs))
        models = Models(policy, reward)
        done = t
        evaluate(run, t, models)
    if run.env.evaluation == "final":
        evaluate(run, done, models, final=True)
    result = RunResult(engine.rd.root, models.policy, models.reward, done, stopped, summary_rows(engine.rd))
    engine.rd.write_summary({"final_policy": result.policy, "final_reward": result.reward,
                             "iterations_done": done, "stopped_by_rule": stopped, "rows": result.rows})
    return result


def evaluate(run: Run, t: int, models: Models, final: bool = False) -> None:
    """The environment's measurements of (pi_t, r_t), as the stage ``evaluate`` of iteration t."""
    if run.env.evaluation != ("final" if final else "every_iteration"):
        return

    def stage(ctx: StageContext):
        metrics = run.env.evaluate(ctx, models.policy, models.reward, t)
        write_json(ctx.dir / "metrics.json", metrics)
        return {}, metrics

    run.engine.stage(t, "evaluate", stage)


SUMMARY_KEYS = {
    "estep_pairs": ["pairs_built", "pairs_skipped_tie"],
    "estep_train": ["loss_last", "dpo_reward_accuracy", "dpo_steps"],
    "select": ["selected", "selected_win_rate", "stop"],
    "mstep_filter": ["eps_t", "filter_kept", "filter_dropped", "filter_drop_share", "filter_mild_negatives_kept", "pseudo_gold_accuracy"],
    "mstep_train": ["rm_heldout_accuracy_before", "rm_heldout_accuracy_after", "rm_rank_correlation_prev"],
}


def summary_rows(rd: RunDir) -> list[dict[str, Any]]:
    """One row per iteration with the headline numbers of each stage (plus every evaluation number)."""
    rows: dict[int, dict[str, Any]] = {}
    for rec in rd.records():
        t = rec["iteration"]
        if t is None:
            continue
        row = rows.setdefault(t, {"iteration": t, "wall_time_s": 0.0})
        row["wall_time_s"] = round(row["wall_time_s"] + rec["wall_time_s"], 1)
        keys = SUMMARY_KEYS.get(rec["stage"])
        metrics = rec["metrics"]
        if rec["stage"] == "evaluate":
            row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))})
        elif keys:
            row.update({k: metrics[k] for k in keys if k in metrics})
    return [rows[t] for t in sorted(rows)]


def run_mutual_taught(cfg: MTConfig, run_dir: str | Path, reporter: Reporter = QUIET,
                      env: Environment | None = None, method: Method = MUTUAL_TAUGHT,
                      command: list[str] | None = None, launcher: Sequence[str] | None = None) -> RunResult:
    """Run (or resume) ``method`` in ``run_dir``; the environment defaults to the config's prompt source."""
    engine = Engine(cfg, run_dir, reporter, command, launcher)
    try:
        env = env or PromptEnvironment(cfg)
        return run_loop(Run(engine, env, env.initial_models()), method)
    finally:
        engine.close()
