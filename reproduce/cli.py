"""`mt-repro`: one typer app; each command parses options, calls one library function, renders with rich."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from .bench_cli import bench_app
from .console import DEBUG_ENV, by_iteration, console, quiet_libraries, set_debug, table, user_errors
from .seam_cli import seam_app

app = typer.Typer(
    name="mt-repro",
    help="Reproduce and extend Mutual-Taught (ACL 2025): co-train a policy and a reward model, run the "
    "baselines, benchmark checkpoints, and measure policy/reward mismatch.",
    epilog="Exit codes: 0 done; 2 a problem with your input, config, files, models or judge (one line on stderr "
           "says what, where and what to do); 1 a bug (its traceback: please report it); 130 interrupted. Finished "
           "work is kept: rerun the same command to resume.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
world_app = typer.Typer(help="The CPU gold-reward world: build it, inspect it.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(seam_app, name="seam")
app.add_typer(bench_app, name="bench")


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option(
        "--debug", envvar=DEBUG_ENV,
        help=f"Print the traceback of every error, also of the one-line errors a user can fix (or set "
             f"{DEBUG_ENV}=1).")] = False,
):
    set_debug(debug)

PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="Preset name (tiny, paper) or a .toml path.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="A TOML file layered over the preset.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: section.key=value (repeatable).")]
MethodOpt = Annotated[str, typer.Option(
    "--method", "-m", help="A registered method (`mt-repro methods` lists them); its defining settings apply over "
                           "yours.")]


def _load(preset, config, overrides, extra=()):
    from mt.config import load_config

    return load_config(preset, config, [*(overrides or []), *extra])


@app.command()
def train(
    preset: PresetOpt = "tiny",
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (the run's state); default runs/<run.name>.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Shortcut for --set run.iterations=N.")] = None,
    seed: Annotated[int | None, typer.Option(help="Shortcut for --set run.seed=N.")] = None,
    method: MethodOpt = "mutual-taught",
    launcher: Annotated[str | None, typer.Option(
        help="Run the DPO and RM updates under this launcher, e.g. \"accelerate launch --config_file "
             "reproduce/accelerate/multi_gpu_zero3.yaml\"; sampling and scoring stay in this process.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
):
    """Run Mutual-Taught (or another registered method): E-step (DPO), model selection and stop rule, M-step
    (RM update), per iteration.

    Rerunning the same command resumes at the first unfinished stage.
    """
    quiet_libraries()
    from mt.progress import Reporter

    from .runner import run_method

    extra = [f"run.iterations={iterations}"] * (iterations is not None) + [f"run.seed={seed}"] * (seed is not None)
    with user_errors():
        _, cfg = _method_config(method, preset, config, overrides, extra)
        target = run_dir or Path("runs") / cfg.run.name
        console.print(f"[bold]{method}[/] run [cyan]{target}[/] (config {cfg.digest()}, seed {cfg.run.seed})")
        with Reporter(enabled=not quiet) as reporter:
            result = run_method(cfg, method, target, reporter, launcher=shlex.split(launcher) if launcher else None)
    console.print(by_iteration(result.rows, title=f"{method}: {target}"))
    status = "stopped by the stop rule" if result.stopped else f"{result.iterations_done} iteration(s) done"
    console.print(f"{status}\nfinal policy: [cyan]{result.policy}[/]\nfinal reward model: [cyan]{result.reward}[/]\n"
                  f"metrics: {target / 'metrics.jsonl'}")


def _method_config(method: str, preset, config, overrides, extra=()):
    """The resolved config of ``method``: preset, file and your settings, then what defines the method."""
    from .methods import METHODS
    from .recipes import method_overrides

    spec = METHODS.get(method)
    settings, ignored = method_overrides(spec, [*(overrides or []), *extra])
    if ignored:
        console.print(f"[yellow]{method} defines {', '.join(ignored)} itself; your setting is not used[/]")
    return spec, _load(preset, config, settings)


@app.command("show-config")
def show_config(preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None,
                method: MethodOpt = "mutual-taught"):
    """Print the resolved configuration (and the method's own options); (reconstructed) marks values the paper
    does not state."""
    from mt.options import describe

    with user_errors():
        spec, cfg = _method_config(method, preset, config, overrides)
        options = spec.parse_options(cfg)
    rows = [{"key": k, "value": repr(v), "note": ("(reconstructed) " if rec else "") + h}
            for k, v, h, rec in [*describe(cfg), *(describe(options, "method.") if options is not None else [])]
            if k not in ("method", "bench")]
    console.print(table(rows, title=f"{method}: config {cfg.digest()}"))


@app.command("methods")
def methods():
    """Every registered method: what it is, what sets it apart from Mutual-Taught, and its own options."""
    from mt.options import describe

    from .methods import METHODS

    rows = []
    for name in METHODS:
        spec = METHODS.get(name)
        options = describe(spec.options(**spec.option_values), "") if spec.options else []
        rows.append({"method": name, "what it is": spec.description,
                     "differs from mutual-taught by": "\n".join(spec.differs_by()) or "-",
                     "options (default)": "\n".join(f"{k}={v!r}" for k, v, _, _ in options) or "-"})
    console.print(table(rows, title="methods (mt-repro show-config --method NAME prints one with its help)"))


@world_app.command("build")
def world_build(preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None,
                force: Annotated[bool, typer.Option(help="Rebuild even if the world folder exists.")] = False):
    """Build (or find in the cache) the gold world: prompt splits, pi_0 and r_0."""
    quiet_libraries()
    from mt.checks import check_world
    from mt.progress import Reporter
    from mt.world.build import build_world, ensure_world, world_dir

    with user_errors():
        cfg = _load(preset, config, overrides)
        check_world(cfg.world)
        with Reporter() as reporter:
            world = build_world(cfg.world, world_dir(cfg.world), reporter) if force else ensure_world(
                cfg.world, reporter)
    _print_world(world)


@world_app.command("info")
def world_info(preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None):
    """Print the world's statistics and its initial models' numbers (builds it if needed)."""
    world_build(preset, config, overrides, force=False)


@world_app.command("controls")
def world_controls(
    preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None,
    out: Annotated[Path, typer.Option(help="Where the control policies and results.json go.")] = Path(
        "runs/world-controls"),
):
    """One DPO round from pi_0 labelled by gold, r_0, a coin and inverted gold: on a calibrated world they
    order gold > r_0 > random > inverted (the instrument's controls, before any method is read)."""
    quiet_libraries()
    from mt.checks import check_unfinished_out_dir, check_world
    from mt.progress import Reporter
    from mt.records import write_json
    from mt.world.build import ensure_world
    from mt.world.controls import controls_order, run_controls

    from .stats import fmt_interval

    with user_errors():
        cfg = _load(preset, config, overrides)
        check_unfinished_out_dir(out, "--out")
        check_world(cfg.world)
        with Reporter() as reporter:
            world = ensure_world(cfg.world, reporter)
            results = run_controls(world, out, cfg)
    write_json(out / "results.json", results)
    keys = ["gold_mean", "gold_win_rate_vs_pi0", "kl_vs_pi0", "marker_rate", "r0_onpolicy_accuracy",
            "r0_hacking_gap"]
    rows = [{"policy": name, **{k: m.get(k) for k in keys}} for name, m in results.items()]
    console.print(table(rows, title=f"world controls ({world.regime} regime): one DPO round from pi_0, by labeller"))
    order = "holds" if controls_order(results) else "[red]does NOT hold[/]"
    gaps = ", ".join(f"{g['higher']} - {g['lower']} {fmt_interval(g['interval'], 100)}" for g in order_gaps(results))
    console.print(f"order gold > r_0 > random > inverted on gold win rate: {order} (adjacent gaps in points, 95% "
                  f"interval over evaluation prompts: {gaps}); r_0 accuracy on its own test "
                  f"{results['pi0']['r0_own_test_accuracy']:.3f}, on pi_0's evaluation samples "
                  f"{results['pi0']['r0_onpolicy_accuracy']:.3f}; results: {out / 'results.json'}")


def order_gaps(results: dict[str, dict], key: str = "gold_win_rate_vs_pi0") -> list[dict]:
    """Each adjacent pair of labellers in the controls' expected order, with the paired difference of their
    per-prompt ``key`` and its bootstrap interval over evaluation prompts: an order broken inside its interval
    is noise, one broken outside it is not."""
    from mt.world.controls import LABELLERS

    from .stats import hierarchical_bootstrap

    present = [name for name in LABELLERS if name in results]
    return [{"higher": a, "lower": b, "interval": hierarchical_bootstrap([[
        x - y for x, y in zip(results[a]["per_prompt"][key], results[b]["per_prompt"][key], strict=True)]])}
        for a, b in zip(present, present[1:], strict=False)]


@world_app.command("curve")
def world_curve(
    labeller: Annotated[str, typer.Argument(help="Who labels every round: gold, r0, random or inverted.")] = "r0",
    iterations: Annotated[int, typer.Option(help="DPO rounds, each from the previous round's policy.")] = 5,
    preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None,
    out: Annotated[Path, typer.Option(help="Where the round policies and results.json go.")] = Path(
        "runs/world-curve"),
):
    """Iterative DPO against a fixed labeller: with r_0 the gold curve should rise, then fall as the policy
    over-optimises r_0 (whose own score keeps rising); with gold it should not fall."""
    quiet_libraries()
    from mt.checks import check_unfinished_out_dir, check_world
    from mt.options import ConfigError
    from mt.progress import Reporter
    from mt.records import write_json
    from mt.world.build import ensure_world
    from mt.world.controls import LABELLERS, iterate

    with user_errors():
        if labeller not in LABELLERS:
            raise ConfigError(f"unknown labeller {labeller!r}; expected one of {', '.join(LABELLERS)}")
        cfg = _load(preset, config, overrides)
        check_unfinished_out_dir(out, "--out")
        check_world(cfg.world)
        with Reporter() as reporter:
            world = ensure_world(cfg.world, reporter)
            rows = iterate(world, labeller, iterations, out, cfg)
    write_json(out / "results.json", rows)
    keys = ["gold_mean", "gold_win_rate_vs_pi0", "kl_vs_pi0", "r0_mean", "r0_onpolicy_accuracy", "marker_rate",
            "r0_hacking_gap"]
    console.print(table([{"iteration": r["iteration"], **{k: r.get(k) for k in keys}} for r in rows],
                        title=f"iterative DPO labelled by {labeller} ({world.regime} regime)"))
    console.print(f"results: {out / 'results.json'}")


@world_app.command("probe")
def world_probe(
    reward: Annotated[str | None, typer.Option(help="Reward model folder to probe (default: the world's r_0), "
                                               "e.g. a run's iter_2/mstep_train/model.")] = None,
    preset: PresetOpt = "tiny", config: ConfigOpt = None, overrides: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Also write the rows to this JSON file.")] = None,
):
    """What the reward model checks: how often it scores a constructed wrong answer (last position dropped or
    repeated, one position substituted) above the right one, per task family (0 = always catches it, 0.5 = blind)."""
    quiet_libraries()
    from mt.checks import check_model, check_world
    from mt.progress import Reporter
    from mt.records import InputError, write_json
    from mt.world.build import ensure_world
    from mt.world.probe import variant_preferences

    with user_errors():
        cfg = _load(preset, config, overrides)
        if reward is not None:
            check_model(reward, "reward", key="--reward")
        if out is not None and out.is_dir():
            raise InputError(f"--out {out}: a folder; give a JSON file name")
        if out is not None and out.exists():
            raise InputError(f"--out {out}: already exists (an earlier probe's rows?); give another file name or "
                             "remove that one")
        check_world(cfg.world)
        with Reporter() as reporter:
            world = ensure_world(cfg.world, reporter)
        rows = variant_preferences(world, reward)
    if out is not None:
        write_json(out, rows)
    console.print(table(rows, title=f"{reward or 'r_0'} against the right answer ({world.regime} regime): "
                                    "share preferring the variant"))


def _tables(names: list[str], preset: str, seeds: int | None, methods: list[str] | None, out: Path | None,
            runs: Path, overrides: list[str] | None, dry_run: bool, quiet: bool, jobs: int | None) -> None:
    quiet_libraries()
    from mt.checks import check_out_dir, check_run_inputs
    from mt.progress import Reporter

    from .paired import write_paired
    from .plots import plot_curves
    from .recipes import load_recipe, plan, world_of
    from .tables import (
        TABLE_METHODS,
        initial_cell,
        policy_metrics,
        render_tables,
        run_cells,
        run_initial,
        save_results,
    )

    with user_errors():
        recipe = load_recipe(preset)
        wanted = methods or list(dict.fromkeys(m for n in names for m in TABLE_METHODS[n]))
        cells = plan(recipe, wanted, seeds or recipe.seeds, runs, overrides or [])
        target = out or Path("results") / recipe.name
        if dry_run:
            _print_plan(recipe, cells, names, target, recipe.workers(jobs))
            return
        check_out_dir(target, "--out")
        check_out_dir(runs, "--runs")
        for cell in cells:  # every cell's run directory and models, before the first cell trains
            check_run_inputs(cell.config, cell.run_dir)
        if recipe.evaluation == "benchmarks" and cells:
            check_run_inputs(*initial_cell(recipe, runs, overrides or []))
        with Reporter(enabled=not quiet) as reporter:
            results = run_cells(cells, reporter, recipe.workers(jobs))
            if recipe.evaluation == "benchmarks" and cells:
                results.append(run_initial(recipe, runs, overrides or [], reporter))
    save_results(results, target / "cells.json")
    written = render_tables(["table1", "table2", "table3", *(["related"] if "related" in names else [])], results,
                            recipe, target, world=world_of(cells))
    written += write_paired(results, recipe.comparisons, policy_metrics(recipe), target)
    if recipe.evaluation == "world":
        png = plot_curves(results, target / "curves.png")
        written += [png] if png else []
    for path in written:
        if path.suffix == ".md":
            console.print(path.read_text())
    console.print("wrote " + ", ".join(str(p) for p in written) + f", {target / 'cells.json'}")


def _print_plan(recipe, cells, names, target, jobs: int) -> None:
    rows = []
    for c in cells:
        rows.append({"method": c.method.name, "seed": c.seed, "status": c.status, "iterations": c.config.run.iterations,
                     "run dir": str(c.run_dir), "config": c.config.digest(),
                     "method settings": " ".join(o for o in c.overrides if not o.startswith(("run.seed", "run.name")))
                     + (f" (kept over --set {' '.join(c.ignored)})" if c.ignored else "")})
    console.print(table(rows, title=f"plan: recipe {recipe.name} (preset {recipe.preset}), tables {', '.join(names)}"))
    cfg = cells[0].config if cells else None
    if cfg is not None:
        prompts = f"the gold world's ({cfg.world.regime} regime)" if cfg.run.env == "world" else cfg.data.prompts
        console.print(f"policy {cfg.models.policy} | reward model {cfg.models.reward} | prompts {prompts} "
                      f"| sampler K={cfg.sampling.k} T={cfg.sampling.temperature} top_p={cfg.sampling.top_p} "
                      f"max_new_tokens={cfg.sampling.max_new_tokens} ({cfg.sampling.backend})")
    evaluation = {"world": "gold-world measurements of each final policy and RM (in every run's evaluate stage)",
                  "benchmarks": "AlpacaEval-2 LC and Arena-Hard on each final policy, RewardBench on each final RM, "
                                "and once on pi_0 and r_0 (the initial row)",
                  "none": "none (the recipe's runs are not evaluated)"}[recipe.evaluation]
    console.print(f"evaluation: {evaluation}\noutputs: {target}/<table>.md|.tex|.csv, paired.*, cells.json"
                  + (", curves.png" if recipe.evaluation == "world" else "")
                  + f"\ncells run {jobs} at a time (--jobs)")
    if recipe.evaluation == "benchmarks" and cfg is not None:
        console.print(table(_benchmark_plan(cfg, len(cells) + 1),
                            title="benchmarks: per evaluated model pair (every cell's final models, and pi_0/r_0 once)"))


def _benchmark_plan(cfg, evaluations: int) -> list[dict]:
    """Per benchmark: judge, data and judge calls; a missing data file or bad judge is shown, not raised."""
    from bench.environment import load_bench_config, plan_evaluation
    from mt.errors import UserError

    bench = load_bench_config(cfg)
    rows = []
    for name in bench.benchmarks:
        only = load_bench_config(cfg)
        only.benchmarks = [name]
        try:
            (row,) = plan_evaluation(cfg, only)
        except UserError as e:
            section = bench.section(name)
            rows.append({"benchmark": name, "judge": bench.judge_of(name) or "none",
                         "data": getattr(section, "data", None) or "default", "problem": str(e)})
            continue
        calls = row["judge_calls"]
        rows.append({**{k: row[k] for k in ("benchmark", "model", "judge", "data", "examples")},
                     "judge calls per model": calls if calls == row["judge_calls_max"] else
                     f"{calls}-{row['judge_calls_max']}",
                     "judge calls in all": calls * evaluations, "problem": "-"})
    return rows


TablePreset = Annotated[str, typer.Option("--preset", "-p", help="Recipe: tiny (gold world, CPU) or paper (GPUs).")]
Seeds = Annotated[int | None, typer.Option(help="Seeds per method (default: the recipe's; tiny = 3).", min=1)]
Methods = Annotated[list[str] | None, typer.Option("--method", "-m", help="Only these methods (repeatable).")]
Out = Annotated[Path | None, typer.Option(help="Output folder; default results/<recipe>.")]
Runs = Annotated[Path, typer.Option(help="Where the cells' run directories live (resumable).")]
DryRun = Annotated[bool, typer.Option(help="Print the plan (every cell, its config and evaluation) and stop.")]
Quiet = Annotated[bool, typer.Option(help="No progress bars.")]
Jobs = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, help="Cells run side by side, each in its own process with an equal share of the CPU "
    "threads (a cell's numbers do not change); default: the recipe's jobs (tiny: 2), at most the CPU count.")]


def _table_command(names: list[str], doc: str):
    def command(preset: TablePreset = "tiny", seeds: Seeds = None, methods: Methods = None, out: Out = None,
                runs: Runs = Path("runs/tables"), overrides: SetOpt = None, dry_run: DryRun = False,
                quiet: Quiet = False, jobs: Jobs = None):
        _tables(names, preset, seeds, methods, out, runs, overrides, dry_run, quiet, jobs)

    command.__doc__ = doc
    return command


app.command("table1")(_table_command(["table1"], "Table 1: every method's final policy, our numbers beside the "
                                     "published ones. Runs the missing cells first (resumable), then writes all three "
                                     "tables from the cells at hand, and the curves."))
app.command("table2")(_table_command(["table2"], "Table 2: the reward models (initial and after Mutual-Taught)."))
app.command("table3")(_table_command(["table3"], "Table 3: Mutual-Taught's ablations."))
app.command("tables")(_table_command(["table1", "table2", "table3"], "All three tables and the per-iteration "
                                     "curves."))
app.command("related")(_table_command(["related"], "RLP-SPG, RLP-UML and SEAM-filtered training beside iterative "
                                      "DPO and Mutual-Taught on the same budget, with SEAM per iteration."))


@app.command()
def headline(
    preset: TablePreset = "tiny",
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", "-v", help="Only these variants of the recipe's headline section (e.g. a world regime).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per method (default: the recipe's headline section).",
                                              min=2)] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default results/<recipe>/headline.")] = None,
    runs: Runs = Path("runs/tables"), overrides: SetOpt = None,
    dry_run: Annotated[bool, typer.Option(help="Print the planned seeds and what they can detect, and stop.")] = False,
    quiet: Quiet = False, jobs: Jobs = None,
):
    """The headline comparison (Mutual-Taught minus the loop without its RM update, beside iterative DPO and the
    M-step's oracle and random controls, the gold-label ceiling) at enough seeds to decide it, per variant; apart
    from the full tables."""
    quiet_libraries()
    import dataclasses

    from mt.checks import check_out_dir, check_run_inputs
    from mt.options import ConfigError
    from mt.progress import Reporter

    from .headline import pilot, power_plan, sentence
    from .paired import write_paired
    from .recipes import load_recipe, plan, world_of
    from .tables import policy_metrics, render_tables, run_cell, run_cells, save_results

    with user_errors():
        recipe = load_recipe(preset)
        h = recipe.headline
        if h is None:
            raise ConfigError(f"recipe {recipe.name!r} has no [headline] table (see reproduce/recipes/tiny.toml)")
        unknown = sorted(set(variant or []) - set(h.variants))
        if unknown:
            raise ConfigError(f"unknown headline variant(s) {', '.join(unknown)}; known: {', '.join(h.variants)}")
        plans = []
        for name in variant or list(h.variants):
            sub = dataclasses.replace(recipe, name=f"{recipe.name}-headline-{name}")
            cells = plan(sub, h.methods, seeds or h.seeds, runs, [*(overrides or []), *h.variants[name]])
            plans.append((name, sub, cells, (out or Path("results") / recipe.name / "headline") / name))
        if not dry_run:  # every variant's folders and models, before the first cell trains
            check_out_dir(out or Path("results"), "--out")
            check_out_dir(runs, "--runs")
            for _, _, cells, target in plans:
                check_out_dir(target, "--out")
                for cell in cells:
                    check_run_inputs(cell.config, cell.run_dir)
        for name, sub, cells, target in plans:
            finished = [run_cell(c) for c in cells if c.finished]
            diffs, source = pilot(finished, Path("results") / recipe.name / "cells.json", h)
            console.print(table([power_plan(diffs, h, seeds or h.seeds, source)],
                                title=f"headline {name}: {' minus '.join(h.comparison)} ({h.metric}, points)"))
            if dry_run:
                continue
            with Reporter(enabled=not quiet) as reporter:
                results = run_cells(cells, reporter, recipe.workers(jobs))
            save_results(results, target / "cells.json")
            written = render_tables(["headline"], results, sub, target, h.methods, world_of(cells))
            written += write_paired(results, [tuple(h.comparison), *recipe.comparisons], policy_metrics(sub), target)
            text = sentence(results, h)
            (target / "headline.txt").write_text(text + "\n")
            console.print(f"[bold]{name}[/]: {text}\nwrote " + ", ".join(str(p) for p in written))


def _print_world(world) -> None:
    m = world.manifest
    console.print(f"[bold]gold world[/] {world.dir} (digest {m['digest']}, built in {m['build_seconds']} s)")
    console.print(table([{"split": k, "prompts": v} for k, v in m["sizes"].items()], title="splits"))
    init = m["initial"]
    rows = [{"measure": k, "value": v} for k, v in init.items()]
    console.print(table(rows, title="initial models (pi_0, r_0)"))
    rp = m["rm_pairs"]
    agreement = "" if rp.get("marker_agreement") is None else (
        f"; where one side carries the marker it is the chosen side in {rp['marker_agreement']:.2f}")
    bias = m["config"].get("hack_label_bias", 0.0)
    labeller = f"; labelled by gold plus {bias:g} for the marker, {rp['against_gold']} against gold" if bias else ""
    console.print(f"{m['regime']} regime; r_0 trained on {rp['pairs']} pairs of pi_0's own samples from "
                  f"{rp.get('prompts_with_pairs')} prompts{agreement}{labeller}")


def main() -> None:
    app()
