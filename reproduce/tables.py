"""The paper's tables: run the missing cells, then put our numbers beside the published ones.

Table 1 compares policies, Table 2 reward models, Table 3 Mutual-Taught's ablations. On the gold
world the measured columns are the world's analogues, named as such (gold win rate against pi_0,
mean gold reward, RM accuracy against gold); they are never presented as AlpacaEval numbers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mt.progress import QUIET, Reporter
from mt.records import write_json

from .published import load_published
from .recipes import Cell, Recipe
from .render import write_table
from .runner import run_method

TABLE_METHODS = {
    "table1": ["offline-dpo", "offline-dpo-rm", "meta-rewarding", "sppo", "iterative-dpo", "mt-no-rm-update",
               "mutual-taught"],
    "table2": ["mutual-taught", "mt-no-selection", "mt-no-filter"],
    "table3": ["mutual-taught", "mt-no-rm-update", "mt-no-selection", "mt-no-filter"],
    "related": ["iterative-dpo", "mutual-taught", "rlp-spg", "rlp-uml", "iterative-dpo-seam-filter",
                "iterative-dpo-random-filter"],
}

# The gold world's measured columns: (key in the evaluation metrics, column title, scale).
WORLD_POLICY = [("gold_win_rate_vs_pi0", "gold win rate vs pi_0 (%)", 100.0), ("gold_mean", "gold reward", 1.0)]
WORLD_RM = [("rm_fixed_test_accuracy", "RM acc., fixed gold test (%)", 100.0),
            ("rm_onpolicy_accuracy", "RM acc., final policy's samples (%)", 100.0),
            ("rm_hacking_gap", "hacking gap (std units)", 1.0)]
WORLD_RELATED = [*WORLD_POLICY, ("rm_onpolicy_accuracy", "RM acc., final policy's samples (%)", 100.0),
                 ("seam", "SEAM (weighted)", 1.0), ("rm_hacking_gap", "hacking gap (std units)", 1.0)]
BENCH_POLICY = [("alpaca_eval_lc", "AE2 LC (%)", 1.0), ("arena_hard", "Arena-Hard (%)", 1.0)]
BENCH_RM = [("reward_bench_average", "RewardBench avg (%)", 1.0)]


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


def run_cell(cell: Cell, reporter: Reporter = QUIET) -> CellResult:
    """Run (or resume, or read back) one method at one seed."""
    from mt.rundir import RunDir

    result = run_method(cell.config, cell.method.name, cell.run_dir, reporter)
    rows = result.rows
    final_row = next((r for r in rows if r["iteration"] == result.iterations_done), rows[-1] if rows else {})
    return CellResult(cell.method.name, cell.seed, str(cell.run_dir), cell.config.digest(), dict(final_row), rows,
                      result.iterations_done, result.stopped, sampled_responses(RunDir(cell.run_dir).records()),
                      cell.method.notes)


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


def run_cells(cells: list[Cell], reporter: Reporter = QUIET) -> list[CellResult]:
    results = []
    with reporter.task("table cells", len(cells)) as advance:
        for cell in cells:
            reporter.log(f"[bold]{cell.label}[/bold] -> {cell.run_dir}")
            res = run_cell(cell, reporter)
            results.append(res)
            advance(1)
    return results


# ---------------------------------------------------------------------------------------------- numbers
def mean_std(values: list[float]) -> tuple[float, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt_mean_std(values: list[float], scale: float) -> str:
    mean, std = mean_std([v * scale for v in values if v is not None])
    if mean != mean:
        return "-"
    digits = 1 if scale == 100 else 3
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def by_method(results: list[CellResult]) -> dict[str, list[CellResult]]:
    out: dict[str, list[CellResult]] = {}
    for r in results:
        out.setdefault(r.method, []).append(r)
    return out


def initial_row(results: list[CellResult]) -> dict[str, Any]:
    """pi_0 and r_0, as measured by the iteration-0 evaluation of a method that starts from them."""
    from .methods import METHODS

    for r in results:
        if r.method in METHODS and not METHODS.get(r.method).starts_at_initial:
            continue  # e.g. Meta-Rewarding's iteration 0 is its judge-trained policy
        for row in r.rows:
            if row["iteration"] == 0:
                return row
    return {}


# ---------------------------------------------------------------------------------------------- tables
def build_table(name: str, results: list[CellResult], recipe: Recipe) -> pd.DataFrame:
    world = recipe.evaluation == "world"
    grouped = by_method(results)
    if name in ("table1", "table3"):
        return _policy_table(name, grouped, initial_row(results), world)
    if name == "table2":
        return _rm_table(grouped, initial_row(results), world)
    if name == "related":
        return _related_table(grouped, initial_row(results), world)
    raise KeyError(f"unknown table {name!r}; known: table1, table2, table3")


def _published_lookup(name: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
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


def _policy_table(name: str, grouped: dict[str, list[CellResult]], init: dict[str, Any], world: bool) -> pd.DataFrame:
    published = _published_lookup(name)
    pub_cols = ["ae2_lc", "arena_hard"] if name == "table1" else ["ae2_lc"]
    measured = WORLD_POLICY if world else BENCH_POLICY
    records = []
    first = "llama-3-8b-instruct" if name == "table1" else None
    if first:
        row = {"method": "initial policy (pi_0)", **_pub_named(_published_cells(published.get(first, []), pub_cols))}
        for key, title, scale in measured:
            row[title] = fmt_mean_std([init.get(key)], scale) if init else "-"
        row["seeds"] = "-"
        records.append(row)
    for method in TABLE_METHODS[name]:
        cells = grouped.get(method)
        if cells is None:
            continue
        row = {"method": method, **_pub_named(_published_cells(published.get(method, []), pub_cols))}
        for key, title, scale in measured:
            row[title] = fmt_mean_std([c.final.get(key) for c in cells], scale)
        row["seeds"] = str(len(cells))
        records.append(row)
    return pd.DataFrame.from_records(records)


PUB_TITLES = {"alpacafarm_win_rate": "published AlpacaFarm win rate", "ae2_lc": "published AE2 LC", "arena_hard": "published Arena-Hard", "average": "published RewardBench avg",
              "source": "published source"}


def _pub_named(cells: dict[str, str]) -> dict[str, str]:
    return {PUB_TITLES.get(k, f"published {k}"): v for k, v in cells.items()}


def _rm_table(grouped: dict[str, list[CellResult]], init: dict[str, Any], world: bool) -> pd.DataFrame:
    published = _published_lookup("table2")
    measured = WORLD_RM if world else BENCH_RM
    records = []
    row = {"reward model": "initial RM (r_0)", **_pub_named(_published_cells(published.get("initial", []),
                                                                              ["average"]))}
    for key, title, scale in measured:
        row[title] = fmt_mean_std([init.get(key)], scale) if init else "-"
    row["seeds"] = "-"
    records.append(row)
    for method in TABLE_METHODS["table2"]:
        cells = grouped.get(method)
        if cells is None:
            continue
        row = {"reward model": f"RM after {method}",
               **_pub_named(_published_cells(published.get(method, []), ["average"]))}
        for key, title, scale in measured:
            row[title] = fmt_mean_std([c.final.get(key) for c in cells], scale)
        row["seeds"] = str(len(cells))
        records.append(row)
    if "gpt-4o" in published:
        row = {"reward model": "GPT-4o-2024-08-06 (published only)",
               **_pub_named(_published_cells(published["gpt-4o"], ["average"]))}
        records.append(row)
    return pd.DataFrame.from_records(records).fillna("-")


def _related_table(grouped: dict[str, list[CellResult]], init: dict[str, Any], world: bool) -> pd.DataFrame:
    published = _published_lookup("related")
    measured = WORLD_RELATED if world else BENCH_POLICY
    records = [{"method": "initial policy (pi_0)",
                **_pub_named(_published_cells(published.get("sft", []), ["alpacafarm_win_rate"])),
                **{title: fmt_mean_std([init.get(key)], scale) if init else "-" for key, title, scale in measured},
                "seeds": "-"}]
    for method in TABLE_METHODS["related"]:
        cells = grouped.get(method)
        if cells is None:
            continue
        records.append({"method": method,
                        **_pub_named(_published_cells(published.get(method, []), ["alpacafarm_win_rate"])),
                        **{title: fmt_mean_std([c.final.get(key) for c in cells], scale)
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
    "table3": "Table 3 (ablation of Mutual-Taught). Published: AlpacaEval-2 LC (%). Ours: {measured}.",
    "related": "Related methods on the same budget (RLP-SPG, RLP-UML, SEAM-filtered vs randomly filtered iterative "
               "DPO). Published: AlpacaFarm simulated win rates from the RLP paper (another setup, not comparable "
               "cell for cell). Ours: {measured}; SEAM is the reconstructed weighted mode between the final policy "
               "and RM.",
}
MEASURED = {
    ("world", "policy"): "the gold world's analogues, mean ± std over seeds: the final policy's gold win rate "
                         "against pi_0 (ties count half) and its mean gold reward on the evaluation split. These are "
                         "not AlpacaEval or Arena-Hard numbers",
    ("world", "rm"): "the gold world's analogues, mean ± std over seeds: the final RM's accuracy against gold on "
                     "the fixed right-vs-corrupted test set and on pairs of the final policy's own samples, and the "
                     "hacking gap (RM score rise minus gold rise from pi_0, in pi_0's standard deviations). These "
                     "are not RewardBench numbers",
    ("benchmarks", "policy"): "the same benchmarks, measured by mt-repro bench on each final policy",
    ("benchmarks", "rm"): "RewardBench, measured by mt-repro bench on each final RM",
    ("none", "policy"): "nothing: the recipe's cells are not evaluated (set run.evaluation)",
    ("none", "rm"): "nothing: the recipe's cells are not evaluated (set run.evaluation)",
}


def render_tables(names: list[str], results: list[CellResult], recipe: Recipe, out: Path) -> list[Path]:
    """Write each table from the cells at hand; rows whose cells were not run are named in the caption."""
    written = []
    ran = {r.method for r in results}
    for name in names:
        if not ran & set(TABLE_METHODS[name]):
            continue
        df = build_table(name, results, recipe)
        kind = "rm" if name == "table2" else "policy"
        caption = CAPTIONS[name].format(measured=MEASURED[(recipe.evaluation, kind)])
        missing = [m for m in TABLE_METHODS[name] if m not in ran]
        if missing:
            caption += f" Not run here: {', '.join(missing)} (`mt-repro tables` runs every row)."
        written += write_table(df, out / name, caption)
    return written
