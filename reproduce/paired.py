"""Paired comparisons: method minus comparator, seed by seed (and prompt by prompt within a seed).

Cells of one seed share pi_0, r_0, the prompt splits and the evaluation prompts, so the per-seed difference
of two methods is far less noisy than either row of a table. Every method is compared with pi_0 (its
iteration-0 evaluation in the same seed); a recipe lists the other comparisons it cares about.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .render import write_table
from .stats import paired_difference
from .tables import INITIAL, CellResult, by_method, initial_cells

PI0 = "pi_0"
DIGITS = {100.0: 1, 1.0: 3}


def seed_vectors(cells: Sequence[CellResult], key: str, initial: bool = False) -> dict[int, list[float]]:
    return {c.seed: v for c in cells if (v := c.vector(key, initial)) is not None}


def paired_rows(results: list[CellResult], comparisons: Sequence[tuple[str, str]],
                metrics: Sequence[tuple[str, str, float]]) -> list[dict]:
    """One row per (method, comparator, metric) that has at least one shared seed."""
    grouped = {m: cells for m, cells in by_method(results).items() if m != INITIAL}
    pi0 = initial_cells(results)
    wanted = [(m, PI0) for m in grouped] + [c for c in comparisons if c[0] in grouped and c[1] in grouped]
    rows = []
    for method, comparator in dict.fromkeys(wanted):
        for key, title, scale in metrics:
            a = seed_vectors(grouped[method], key)
            b = seed_vectors(pi0, key, initial=True) if comparator == PI0 else seed_vectors(grouped[comparator], key)
            if not set(a) & set(b):
                continue
            r = paired_difference(a, b)
            digits = DIGITS.get(scale, 3)
            rows.append({"method": method, "comparator": comparator, "metric": title, "paired seeds": r.n,
                         "mean difference": f"{scale * r.mean_diff:+.{digits}f}",
                         "95% CI": f"[{scale * r.low:+.{digits}f}, {scale * r.high:+.{digits}f}]",
                         "p (sign-flip)": f"{r.p_value:.3g}" + ("" if r.exact else " (MC)"),
                         "sd of seed differences": "-" if r.sd != r.sd else f"{scale * r.sd:.{digits}f}"})
    return rows


CAPTION = ("Paired comparisons, method minus comparator, seed by seed: the mean per-seed difference, its 95% "
           "interval (a bootstrap over seeds, then over evaluation prompts within a seed, the two methods' prompts "
           "resampled together) and a two-sided sign-flip permutation p-value over seeds (exact: all 2^n sign "
           "patterns; with n seeds it cannot go below 2/2^n). pi_0 is each seed's iteration-0 evaluation.")


def write_paired(results: list[CellResult], comparisons: Sequence[tuple[str, str]],
                 metrics: Sequence[tuple[str, str, float]], out: Path) -> list[Path]:
    rows = paired_rows(results, comparisons, metrics)
    if not rows:
        return []
    return write_table(pd.DataFrame.from_records(rows), out / "paired", CAPTION)
