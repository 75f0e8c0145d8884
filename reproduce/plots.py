"""Per-iteration curves of every method, saved as PNG beside the tables."""

from __future__ import annotations

import statistics
from pathlib import Path

from .tables import CellResult, by_method

CURVES = [("gold_mean", "gold reward"), ("rm_onpolicy_accuracy", "RM accuracy on the policy's samples"),
          ("rm_hacking_gap", "hacking gap (RM rise - gold rise, std units)"),
          ("seam", "SEAM between policy and RM (weighted, reconstructed)"),
          ("kl_vs_pi0", "KL(pi_t || pi_0)"), ("rm_minus_r0_onpolicy_accuracy", "r_t minus r_0, accuracy on pi_t's samples"),
          ("pseudo_gold_accuracy", "gold accuracy of the M-step's pseudo-pairs"),
          ("rm_rank_correlation_prev", "Spearman of r_{t-1} and r_t on pi_t's samples")]


def method_colors(methods: list[str]) -> dict[str, tuple]:
    """One colour per method, the same in every panel (a panel draws only the methods that have its measurement,
    so colours taken in drawing order would change from panel to panel)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def draw_curves(results: list[CellResult], curves=CURVES):
    """The figure: one panel per measurement, one line per method (mean over seeds, band = min..max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    grouped = by_method(results)
    colors = method_colors(list(grouped))
    cols = 2
    rows_ = (len(curves) + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(6.0 * cols, 4.2 * rows_), squeeze=False)
    flat_axes = [a for row in axes for a in row]
    for ax in flat_axes[len(curves):]:
        ax.set_visible(False)
    for ax, (key, title) in zip(flat_axes, curves, strict=False):
        for method, cells in grouped.items():
            iters = sorted({row["iteration"] for c in cells for row in c.rows if row.get(key) is not None})
            if not iters:
                continue
            values = [[row[key] for c in cells for row in c.rows if row["iteration"] == t and row.get(key) is not None]
                      for t in iters]
            mean = [statistics.fmean(v) for v in values]
            ax.plot(iters, mean, marker="o", label=method, color=colors[method])
            if any(len(v) > 1 for v in values):
                ax.fill_between(iters, [min(v) for v in values], [max(v) for v in values], alpha=0.15,
                                color=colors[method])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_curves(results: list[CellResult], path: Path, curves=CURVES) -> Path | None:
    """``draw_curves`` saved as PNG at ``path`` (None when no cell has per-iteration rows)."""
    import matplotlib.pyplot as plt

    if not any(r.rows for r in results):
        return None
    fig = draw_curves(results, curves)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
