"""The paper's tables: run the missing cells, then put our numbers beside the published ones.

Table 1 compares policies, Table 2 reward models, Table 3 Mutual-Taught's ablations. On the gold
world the measured columns are the world's analogues, named as such (gold win rate against pi_0,
mean gold reward, RM accuracy against gold); they are never presented as AlpacaEval numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mt.progress import QUIET, Reporter
from mt.records import write_json

from .published import load_published
from .recipes import Cell, Recipe
from .render import write_table
from .runner import run_method
from .stats import fmt_interval, hierarchical_bootstrap, stop_rate

if TYPE_CHECKING:
    from mt.config import MTConfig
    from mt.world.config import WorldConfig

TABLE_METHODS = {
    "table1": ["offline-dpo", "offline-dpo-rm", "meta-rewarding", "sppo", "iterative-dpo", "mt-no-rm-update",
               "mutual-taught"],
    "table2": ["mutual-taught", "mt-no-selection", "mt-no-filter"],
    "table3": ["mutual-taught", "mt-no-rm-update", "mt-no-selection", "mt-no-filter", "mt-filter-margin-std",
               "mt-with-estep-pairs", "mt-oracle-rm", "mt-random-rm", "mt-gold-labels"],
    "related": ["iterative-dpo", "mutual-taught", "rlp-spg", "rlp-uml", "iterative-dpo-seam-filter",
                "iterative-dpo-random-filter"],
    "headline": ["mutual-taught", "mt-no-rm-update", "iterative-dpo", "mt-oracle-rm", "mt-random-rm",
                 "mt-gold-labels"],
}
PUBLISHED = ("table1", "table2", "table3", "related")  # tables with published numbers beside ours

# The gold world's measured columns: (key in the evaluation metrics, column title, scale).
WORLD_POLICY = [("gold_win_rate_vs_pi0", "gold win rate vs pi_0 (%)", 100.0), ("gold_mean", "gold reward", 1.0)]
WORLD_RM = [("rm_fixed_test_accuracy", "RM acc., fixed gold test (%)", 100.0),
            ("rm_onpolicy_accuracy", "RM acc., final policy's samples (%)", 100.0),
            ("rm_hacking_gap", "hacking gap (std units)", 1.0)]
WORLD_RELATED = [*WORLD_POLICY, ("rm_onpolicy_accuracy", "RM acc., final policy's samples (%)", 100.0),
                 ("seam", "SEAM (weighted)", 1.0), ("rm_hacking_gap", "hacking gap (std units)", 1.0)]
BENCH_POLICY = [("alpaca_eval_lc", "AE2 LC (%)", 1.0), ("arena_hard", "Arena-Hard (%)", 1.0)]
BENCH_RM = [("reward_bench_average", "RewardBench avg (%)", 1.0)]


def policy_metrics(recipe: Recipe) -> list[tuple[str, str, float]]:
    """The policy columns a recipe's tables measure (and its paired comparisons compare)."""
    return WORLD_POLICY if recipe.evaluation == "world" else BENCH_POLICY


@dataclass
class CellResult:
    method: str
    seed: int
    run_dir: str
    config_digest: str
    final: dict[str, Any]  # measurements of the final policy and RM
    rows: list[dict[str, Any]]  # per-iteration summary rows (for the curves)
    iterations_done: int
    stopped: bool
    samples: int  # responses sampled for training, the budget compared across methods
    notes: str
    stop_rule: bool = False  # whether the method has a stop rule (the firing-rate column)
    per_prompt: dict[str, list[float]] = field(default_factory=dict)  # final evaluation, per evaluation prompt
    initial_per_prompt: dict[str, list[float]] = field(default_factory=dict)  # iteration 0's, when evaluated

    def vector(self, key: str, initial: bool = False) -> list[float] | None:
        """The per-prompt values of a measurement (a scalar measurement as one value), or None."""
        per_prompt = self.initial_per_prompt if initial else self.per_prompt
        if key in per_prompt:
            return per_prompt[key]
        value = (self.rows[0] if initial and self.rows else self.final).get(key)
        return None if value is None or value != value else [value]


def evaluation_record(rd, iteration: int) -> dict[str, Any]:
    """The metrics of iteration ``iteration``'s evaluate stage ({} when it was not evaluated)."""
    return rd.done_record(iteration, "evaluate")["metrics"] if rd.is_done(iteration, "evaluate") else {}


def run_cell(cell: Cell, reporter: Reporter = QUIET) -> CellResult:
    """Run (or resume, or read back) one method at one seed."""
    from mt.rundir import RunDir

    result = run_method(cell.config, cell.method.name, cell.run_dir, reporter)
    rows = result.rows
    final_row = next((r for r in rows if r["iteration"] == result.iterations_done), rows[-1] if rows else {})
    rd = RunDir(cell.run_dir)
    return CellResult(cell.method.name, cell.seed, str(cell.run_dir), cell.config.digest(), dict(final_row), rows,
                      result.iterations_done, result.stopped, sampled_responses(rd.records()), cell.method.notes,
                      cell.config.select.stop_rule,
                      evaluation_record(rd, result.iterations_done).get("per_prompt", {}),
                      evaluation_record(rd, 0).get("per_prompt", {}))


INITIAL = "initial"  # the cell that measures pi_0 and r_0 alone, for recipes whose evaluation is final-only


def initial_cell(recipe: Recipe, runs_root: Path, user: list[str]) -> tuple[MTConfig, Path]:
    """The config and run directory of the evaluation of pi_0 and r_0 (``run_initial``)."""
    from .methods import METHODS
    from .recipes import cell_config

    cfg, _, _ = cell_config(recipe, METHODS.get("mutual-taught"), 0, user)
    return cfg, runs_root / recipe.name / INITIAL


def run_initial(recipe: Recipe, runs_root: Path, user: list[str], reporter: Reporter = QUIET) -> CellResult:
    """pi_0 and r_0 through the recipe's evaluation once, as a run of no iterations (resumable, read back)."""
    from .runner import evaluate_initial

    cfg, run_dir = initial_cell(recipe, runs_root, user)
    metrics = evaluate_initial(cfg, run_dir, reporter)
    row = {"iteration": 0, **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}}
    return CellResult(INITIAL, 0, str(run_dir), cfg.digest(), row, [row], 0, False, 0, "pi_0 and r_0, not trained",
                      False, metrics.get("per_prompt", {}), metrics.get("per_prompt", {}))


def sampled_responses(records: list[dict[str, Any]]) -> int:
    """Policy samples drawn for training (E-step K per prompt, M-step two per prompt and draw)."""
    total = 0
    for rec in records:
        m = rec["metrics"]
        if rec["stage"] == "estep_generate":
            total += m.get("completions", 0)
        elif rec["stage"] == "mstep_generate":
            total += m.get("completions", 0)
    return total


def run_cells(cells: list[Cell], reporter: Reporter = QUIET, jobs: int = 1) -> list[CellResult]:
    """Run (or read back) every cell, in order, or ``jobs`` at a time in worker processes that share the CPU
    threads out evenly. A cell's numbers do not depend on how many ran beside it (tests/test_methods.py)."""
    if jobs > 1 and sum(not c.finished for c in cells) > 1:
        return _run_cells_in_workers(cells, reporter, jobs)
    results = []
    with reporter.task("table cells", len(cells)) as advance:
        for cell in cells:
            reporter.log(f"[bold]{cell.label}[/bold] -> {cell.run_dir}")
            res = run_cell(cell, reporter)
            results.append(res)
            advance(1)
    return results


def _run_cells_in_workers(cells: list[Cell], reporter: Reporter, jobs: int) -> list[CellResult]:
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    jobs = min(jobs, len(cells))
    _build_worlds(cells, reporter)  # once, here: workers building the same world at once would race
    threads = max(1, (os.cpu_count() or 1) // jobs)
    reporter.log(f"{len(cells)} cells, {jobs} at a time ({threads} CPU thread{'s' * (threads > 1)} each)")
    results: list[CellResult | None] = [None] * len(cells)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))
    try:
        with reporter.task("table cells", len(cells)) as advance:
            # A method's spec holds its build function, which need not pickle; the worker looks it up by name.
            futures = {pool.submit(_run_cell_by_name, c.method.name, c.seed, c.run_dir, c.config, c.overrides,
                                   c.ignored): i for i, c in enumerate(cells)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                reporter.log(f"[bold]{cells[i].label}[/bold] done -> {cells[i].run_dir}")
                advance(1)
    finally:
        pool.shutdown(cancel_futures=True)  # after an error: no new cell starts, a started one finishes
    return results


def _build_worlds(cells: list[Cell], reporter: Reporter) -> None:
    from mt.world.build import ensure_world, world_dir

    worlds = {world_dir(c.config.world): c.config.world for c in cells if c.config.run.env == "world"}
    for world in worlds.values():
        ensure_world(world, reporter)


def _init_worker(threads: int) -> None:
    import os

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    from .console import quiet_libraries

    torch.set_num_threads(threads)
    quiet_libraries()


def _run_cell_by_name(method: str, seed: int, run_dir: Path, config: MTConfig, overrides: list[str],
                      ignored: list[str]) -> CellResult:
    from .methods import METHODS

    return run_cell(Cell(METHODS.get(method), seed, run_dir, config, overrides, ignored))


# ---------------------------------------------------------------------------------------------- numbers
NOT_OFFICIAL = " (not official LC)"
PERCENT_KEYS = {key for key, *_ in BENCH_POLICY + BENCH_RM}  # the benchmarks report percentages already


def fmt_cells(cells: list[CellResult], key: str, scale: float, initial: bool = False) -> str:
    """Mean over seeds with its 95% interval (a bootstrap over seeds, then over prompts within a seed)."""
    vectors = [v for c in cells if (v := c.vector(key, initial)) is not None]
    if not vectors:
        return "-"
    digits = 1 if scale == 100 or key in PERCENT_KEYS else 3
    text = (f"{vectors[0][0] * scale:.{digits}f}" if len(vectors) == 1 and len(vectors[0]) == 1
            else fmt_interval(hierarchical_bootstrap(vectors), scale, digits))
    # Without alpaca_eval's two hub files the LC figure is the GLM without its difficulty term: say so.
    if key == "alpaca_eval_lc" and any((c.rows[0] if initial else c.final).get("alpaca_eval_lc_official") is False
                                       for c in cells):
        text += NOT_OFFICIAL
    return text


STOP_TITLE = "stop rule fired (95% CI)"


def fmt_stop_rate(cells: list[CellResult]) -> str:
    """How often the stop rule fired, k/n with a Wilson interval; '-' for methods without one."""
    if not cells or not cells[0].stop_rule:
        return "-"
    rate = stop_rate([c.stopped for c in cells])
    return f"{sum(c.stopped for c in cells)}/{len(cells)} [{100 * rate.low:.0f}, {100 * rate.high:.0f}]%"


def by_method(results: list[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = {}
    for r in results:
        out.setdefault(r.method, []).append(r)
    return out


def initial_cells(results: list[CellResult]) -> list[CellResult]:
    """One cell per seed whose iteration-0 evaluation measured pi_0 and r_0 (a method that starts from them)."""
    from .methods import METHODS

    by_seed: dict[int, CellResult] = {}
    for r in results:
        if r.method in METHODS and not METHODS.get(r.method).starts_at_initial:
            continue  # e.g. Meta-Rewarding's iteration 0 is its judge-trained policy
        if r.rows and r.rows[0]["iteration"] == 0:
            by_seed.setdefault(r.seed, r)
    return [by_seed[s] for s in sorted(by_seed)]


# ---------------------------------------------------------------------------------------------- tables
def build_table(name: str, results: list[CellResult], recipe: Recipe, methods: list[str] | None = None
                ) -> pd.DataFrame:
    world = recipe.evaluation == "world"
    grouped = by_method(results)
    if name in ("table1", "table3", "headline"):
        return _policy_table(name, grouped, initial_cells(results), world, methods or TABLE_METHODS[name])
    if name == "table2":
        return _rm_table(grouped, initial_cells(results), world)
    if name == "related":
        return _related_table(grouped, initial_cells(results), world)
    raise KeyError(f"unknown table {name!r}; known: table1, table2, table3")


def _published_lookup(name: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if name not in PUBLISHED:
        return out
    for row in load_published(name):
        out.setdefault(row["key"], []).append(row)
    return out


def _published_cells(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, str]:
    """The paper's own (S1) row first; other sources follow in brackets with their label."""
    if not rows:
        return {c: "-" for c in columns} | {"source": "-"}
    main = next((r for r in rows if r["source"] == "S1"), rows[0])
    out = {c: _num(main.get(c)) for c in columns}
    out["source"] = main["source"]
    for other in rows:
        if other is main:
            continue
        out["source"] += f"; {other['source']}: " + ", ".join(
            f"{c}={_num(other.get(c))}" for c in columns if _num(other.get(c)) != "-")
    return out


def _num(value) -> str:
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return "-"
    return f"{float(value):.1f}"


def _policy_table(name: str, grouped: dict[str, list[CellResult]], init: list[CellResult], world: bool,
                  methods: list[str]) -> pd.DataFrame:
    published = _published_lookup(name)
    pub_cols = ["ae2_lc", "arena_hard"] if name == "table1" else ["ae2_lc"] if name in PUBLISHED else []
    measured = WORLD_POLICY if world else BENCH_POLICY
    records = []
    first = "llama-3-8b-instruct" if name in ("table1", "headline") else None
    if first:
        row = {"method": "initial policy (pi_0)",
               **(_pub_named(_published_cells(published.get(first, []), pub_cols)) if pub_cols else {})}
        for key, title, scale in measured:
            row[title] = fmt_cells(init, key, scale, initial=True) if init else "-"
        row[STOP_TITLE], row["seeds"] = "-", "-"
        records.append(row)
    for method in methods:
        cells = grouped.get(method)
        if cells is None:
            continue
        row = {"method": method,
               **(_pub_named(_published_cells(published.get(method, []), pub_cols)) if pub_cols else {})}
        for key, title, scale in measured:
            row[title] = fmt_cells(cells, key, scale)
        row[STOP_TITLE], row["seeds"] = fmt_stop_rate(cells), str(len(cells))
        records.append(row)
    return pd.DataFrame.from_records(records)


PUB_TITLES = {"alpacafarm_win_rate": "published AlpacaFarm win rate", "ae2_lc": "published AE2 LC", "arena_hard": "published Arena-Hard", "average": "published RewardBench avg",
              "source": "published source"}


def _pub_named(cells: dict[str, str]) -> dict[str, str]:
    return {PUB_TITLES.get(k, f"published {k}"): v for k, v in cells.items()}


def _rm_table(grouped: dict[str, list[CellResult]], init: list[CellResult], world: bool) -> pd.DataFrame:
    published = _published_lookup("table2")
    measured = WORLD_RM if world else BENCH_RM
    records = []
    row = {"reward model": "initial RM (r_0)", **_pub_named(_published_cells(published.get("initial", []),
                                                                              ["average"]))}
    for key, title, scale in measured:
        row[title] = fmt_cells(init, key, scale, initial=True) if init else "-"
    row["seeds"] = "-"
    records.append(row)
    for method in TABLE_METHODS["table2"]:
        cells = grouped.get(method)
        if cells is None:
            continue
        row = {"reward model": f"RM after {method}",
               **_pub_named(_published_cells(published.get(method, []), ["average"]))}
        for key, title, scale in measured:
            row[title] = fmt_cells(cells, key, scale)
        row["seeds"] = str(len(cells))
        records.append(row)
    if "gpt-4o" in published:
        row = {"reward model": "GPT-4o-2024-08-06 (published only)",
               **_pub_named(_published_cells(published["gpt-4o"], ["average"]))}
        records.append(row)
    return pd.DataFrame.from_records(records).fillna("-")


def _related_table(grouped: dict[str, list[CellResult]], init: list[CellResult], world: bool) -> pd.DataFrame:
    published = _published_lookup("related")
    measured = WORLD_RELATED if world else BENCH_POLICY
    records = [{"method": "initial policy (pi_0)",
                **_pub_named(_published_cells(published.get("sft", []), ["alpacafarm_win_rate"])),
                **{title: fmt_cells(init, key, scale, initial=True) if init else "-" for key, title, scale in measured},
                "seeds": "-"}]
    for method in TABLE_METHODS["related"]:
        cells = grouped.get(method)
        if cells is None:
            continue
        records.append({"method": method,
                        **_pub_named(_published_cells(published.get(method, []), ["alpacafarm_win_rate"])),
                        **{title: fmt_cells(cells, key, scale)
                           for key, title, scale in measured},
                        "seeds": str(len(cells))})
    return pd.DataFrame.from_records(records)


def save_results(results: list[CellResult], path: Path) -> None:
    write_json(path, [r.__dict__ for r in results])


# ---------------------------------------------------------------------------------------------- orchestration
CAPTIONS = {
    "table1": "Table 1 (policy). Published: AlpacaEval-2 LC and Arena-Hard win rates (%) of Llama-3-8B-Instruct "
              "trained by each method. Ours: {measured}.",
    "table2": "Table 2 (reward model). Published: RewardBench average (%). Ours: {measured}.",
    "table3": "Table 3 (ablation of Mutual-Taught), with two reconstructed choices as ablations, the M-step's "
              "oracle and random controls and the gold-label ceiling of any RM update (ours only). Published: "
              "AlpacaEval-2 LC (%). Ours: {measured}.",
    "headline": "The headline comparison: Mutual-Taught against the same loop without the RM update, with "
                "iterative DPO, the M-step's oracle and random controls and the gold-label ceiling, at the seeds "
                "`mt-repro headline` ran. "
                "Ours: {measured}. paired.md holds the per-seed differences.",
    "related": "Related methods on the same budget (RLP-SPG, RLP-UML, SEAM-filtered vs randomly filtered iterative "
               "DPO). Published: AlpacaFarm simulated win rates from the RLP paper (another setup, not comparable "
               "cell for cell). Ours: {measured}; SEAM is the reconstructed weighted mode between the final policy "
               "and RM.",
}
REGIMES = {
    "shift": "no spurious cue; r_0 is right on pi_0's samples and unsystematically wrong off them, so this tests "
             "whether the RM keeps up as the policy shifts (the paper's claim)",
    "hack": "the marker opens right answers far more often than wrong ones on pi_0's samples and gold charges it; "
            "meant as a shortcut for r_0, it also steers the policy to right answers, so this measures how each "
            "method trades the charge against that gain, not resistance to a shortcut (README, 'The gold world')",
    "hack-labeller": "r_0's labeller added {bias:g} to a marked answer's gold and gold charges the marker "
                     "{penalty:g}; pi_0 marks right and wrong answers alike, so the marker is a shortcut that r_0 "
                     "rewards and the policy can take without answering better: this tests whether an RM update "
                     "undoes a shortcut the policy learned (README, 'The gold world')",
}


def regime_caption(world: WorldConfig) -> str:
    """What the world's regime measures; a hack world's cue is in its demonstrations or in r_0's labels."""
    if world.regime == "hack" and world.hack_label_bias > 0:
        return REGIMES["hack-labeller"].format(bias=world.hack_label_bias, penalty=world.marker_penalty)
    return REGIMES[world.regime]


MEASURED = {
    ("world", "policy"): "the gold world's analogues, mean and 95% interval over seeds (a bootstrap over seeds, then over evaluation prompts within a seed): the final policy's gold win rate "
                         "against pi_0 (ties count half) and its mean gold reward on the evaluation split. These are "
                         "not AlpacaEval or Arena-Hard numbers",
    ("world", "rm"): "the gold world's analogues, mean and 95% interval over seeds (a bootstrap over seeds, then over evaluation prompts within a seed): the final RM's accuracy against gold on "
                     "the fixed right-vs-corrupted test set and on pairs of the final policy's own samples, and the "
                     "hacking gap (RM score rise minus gold rise from pi_0, in pi_0's standard deviations). These "
                     "are not RewardBench numbers",
    ("benchmarks", "policy"): "the same benchmarks, measured by mt-repro bench on each final policy",
    ("benchmarks", "rm"): "RewardBench, measured by mt-repro bench on each final RM",
    ("none", "policy"): "nothing: the recipe's cells are not evaluated (set run.evaluation)",
    ("none", "rm"): "nothing: the recipe's cells are not evaluated (set run.evaluation)",
}


def render_tables(names: list[str], results: list[CellResult], recipe: Recipe, out: Path,
                  methods: list[str] | None = None, world: WorldConfig | None = None) -> list[Path]:
    """Write each table from the cells at hand; rows whose cells were not run are named in the caption.
    ``methods`` replaces a table's registered rows (the headline's are the recipe's); ``world`` is the world
    the cells ran on (``world_of``), when overrides moved it from the recipe's."""
    written = []
    ran = {r.method for r in results}
    world = world or recipe.world
    for name in names:
        rows = methods or TABLE_METHODS[name]
        if not ran & set(rows):
            continue
        df = build_table(name, results, recipe, rows)
        kind = "rm" if name == "table2" else "policy"
        caption = CAPTIONS[name].format(measured=MEASURED[(recipe.evaluation, kind)])
        if world:
            caption = f"[gold world, {world.regime} regime: {regime_caption(world)}] {caption}"
        missing = [m for m in rows if m not in ran]
        if missing:
            caption += f" Not run here: {', '.join(missing)} (`mt-repro tables` runs every row)."
        written += write_table(df, out / name, caption)
    return written
