"""The headline comparison, run with enough seeds to decide it, apart from the full tables.

A recipe's ``[headline]`` names the methods, the comparison that decides the headline (by default Mutual-Taught
minus the same loop without its RM update), the metric, the target half-width of its paired 95% interval, the
seeds, and variants (one headline per world regime, say: each variant is a list of settings). Before anything
runs, the plan says how many seeds it will use and, from the per-seed differences already measured (the
headline's own finished cells, else the recipe's tables), how wide the interval should come out and the smallest
difference those seeds can detect.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt.options import ConfigError

from .stats import detectable_difference, paired_difference, seeds_for_halfwidth, t_quantile


@dataclass
class Headline:
    methods: list[str] = field(default_factory=lambda: ["mutual-taught", "mt-no-rm-update", "iterative-dpo",
                                                        "mt-oracle-rm", "mt-random-rm", "mt-gold-labels"])
    comparison: tuple[str, str] = ("mutual-taught", "mt-no-rm-update")
    metric: str = "gold_win_rate_vs_pi0"
    scale: float = 100.0  # the metric in the units of halfwidth (points of win rate)
    halfwidth: float = 3.0
    seeds: int = 10
    variants: dict[str, list[str]] = field(default_factory=lambda: {"default": []})


_EXPECTED = {"methods": "a list of method names", "comparison": "[method, comparator]", "metric": "a metric name",
             "scale": "a number", "halfwidth": "a number", "seeds": "an integer",
             "variants": "a table of name = [settings]"}


def _typed(key: str, value: Any) -> bool:
    """A [headline] value has its field's type (TOML gives lists, tables, numbers and text)."""
    def texts(v):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {"methods": texts(value), "comparison": texts(value), "metric": isinstance(value, str),
            "scale": number, "halfwidth": number, "seeds": number and isinstance(value, int),
            "variants": isinstance(value, dict) and all(texts(v) for v in value.values())}[key]


def parse_headline(data: dict[str, Any], where: str) -> Headline:
    known = {f.name for f in dataclasses.fields(Headline)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where} [headline]: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, value in data.items():
        if not _typed(key, value):
            raise ConfigError(f"{where} [headline]: {key} = {value!r}: expected {_EXPECTED[key]}")
    h = Headline(**{k: (tuple(v) if k == "comparison" else v) for k, v in data.items()})
    if len(h.comparison) != 2 or not set(h.comparison) <= set(h.methods):
        raise ConfigError(f"{where} [headline]: comparison {list(h.comparison)} must name two of its methods")
    if h.seeds < 2 or h.halfwidth <= 0:
        raise ConfigError(f"{where} [headline]: expected seeds >= 2 and halfwidth > 0")
    return h


def differences(results, headline: Headline) -> dict[int, float]:
    """Per-seed differences of the headline comparison among finished cells (in the metric's scale)."""
    a, b = headline.comparison
    by = {(r.method, r.seed): r for r in results}
    out = {}
    for (method, seed), cell in by.items():
        other = by.get((b, seed))
        if method == a and other is not None:
            va, vb = cell.vector(headline.metric), other.vector(headline.metric)
            if va is not None and vb is not None:
                out[seed] = headline.scale * (sum(va) / len(va) - sum(vb) / len(vb))
    return out


def power_plan(diffs: dict[int, float], headline: Headline, seeds: int, source: str) -> dict[str, Any]:
    """What ``seeds`` seeds should give, from the spread of the per-seed differences measured so far."""
    plan: dict[str, Any] = {"seeds planned": seeds, "pilot seeds": len(diffs), "pilot": source}
    if len(diffs) < 2:
        plan["note"] = "no pilot yet (fewer than 2 paired seeds): the width cannot be predicted"
        return plan
    values = list(diffs.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    plan.update({"sd of per-seed differences": round(sd, 2),
                 "expected half-width": round(t_quantile(0.975, seeds - 1) * sd / math.sqrt(seeds), 2),
                 "target half-width": headline.halfwidth,
                 "seeds for the target": seeds_for_halfwidth(sd, headline.halfwidth) if sd > 0 else 2,
                 "detectable difference (80% power)": round(detectable_difference(sd, seeds), 2)})
    return plan


def pilot(results_now, recipe_cells: Path, headline: Headline) -> tuple[dict[int, float], str]:
    """The per-seed differences to plan from: the headline's own finished cells, else the recipe's tables."""
    own = differences(results_now, headline)
    if len(own) >= 2 or not recipe_cells.exists():
        return own, "this headline's finished cells"
    from .tables import CellResult

    cells = [CellResult(**r) for r in json.loads(recipe_cells.read_text())]
    return differences(cells, headline), str(recipe_cells)


def sentence(results, headline: Headline) -> str:
    """The headline in words a reader can check against paired.md."""
    a, b = headline.comparison
    by = {(r.method, r.seed): r for r in results}
    va = {s: r.vector(headline.metric) for (m, s), r in by.items() if m == a and r.vector(headline.metric)}
    vb = {s: r.vector(headline.metric) for (m, s), r in by.items() if m == b and r.vector(headline.metric)}
    if not set(va) & set(vb):
        return f"{a} and {b} share no finished seed yet"
    r = paired_difference(va, vb)
    k = headline.scale
    verdict = ("better than" if r.low > 0 else "worse than" if r.high < 0 else "not distinguishable from")
    return (f"{a} minus {b}: {k * r.mean_diff:+.1f} points of {headline.metric} [95% CI {k * r.low:+.1f}, "
            f"{k * r.high:+.1f}] over {r.n} paired seeds, sign-flip p = {r.p_value:.3g}: {a} is {verdict} {b}"
            f"{'' if verdict.startswith('not') else ' by this measure'}; the interval is "
            f"{'within' if k * (r.high - r.low) / 2 <= headline.halfwidth else 'wider than'} the ±"
            f"{headline.halfwidth:g}-point target.")
