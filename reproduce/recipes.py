"""Recipes: which preset every method runs on, how many seeds, and the few per-method settings.

A cell is one (method, seed): its config is the preset, then the method's option defaults, the
recipe's per-method settings and the user's ``--set``, then the settings that define the method
(offline DPO is one round, iterative DPO never updates its RM, ...): a ``--set`` aimed at all methods
does not redefine one. Its run directory is ``<runs>/<recipe>/<method>/seed-<s>``, so a cell that
finished is read back, not rerun.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mt.config import ConfigError, MTConfig, load_config
from mt.options import read_toml
from mt.world.config import WorldConfig

from .headline import Headline, parse_headline
from .methods import METHODS, MethodSpec

RECIPE_DIR = Path(__file__).parent / "recipes"


@dataclass
class Recipe:
    name: str
    preset: str
    seeds: int
    config: dict = field(default_factory=dict)  # a config layer every cell shares (the [config] table)
    method_overrides: dict[str, list[str]] = field(default_factory=dict)
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # (method, comparator) pairs, paired by seed
    headline: Headline | None = None  # the decisive comparison at many seeds (`mt-repro headline`)
    jobs: int = 1  # cells run side by side (tiny models on a CPU); one for GPU recipes, whose cells fill the GPU

    def workers(self, jobs: int | None = None) -> int:
        """Cells to run side by side: ``jobs`` (the --jobs option) or the recipe's, at most the CPU count."""
        return max(1, min(jobs or self.jobs, os.cpu_count() or 1))

    @property
    def evaluation(self) -> str:
        """What measures the cells: "world" (gold measurements), "benchmarks", or "none"."""
        cfg = load_config(self.preset, tables=[self.config])
        if cfg.run.evaluation == "benchmarks":
            return "benchmarks"
        return "world" if cfg.run.env == "world" else "none"

    @property
    def world(self) -> WorldConfig | None:
        """The gold world's settings (regime included) when the cells run on the world, else None."""
        return gold_world(load_config(self.preset, tables=[self.config]))


def load_recipe(name: str) -> Recipe:
    path = Path(name) if name.endswith(".toml") else RECIPE_DIR / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.toml")))
        raise ConfigError(f"unknown recipe {name!r}; known: {known} (or a path to a .toml file)")
    data = read_toml(path, "recipe")
    if "base" in data:  # a variant of another recipe: its tables replace the base's, [config] merges key by key
        base = data.pop("base")
        base_path = RECIPE_DIR / f"{base}.toml"
        if not isinstance(base, str) or not base_path.exists():
            raise ConfigError(f"recipe {path}: base={base!r}: expected the name of a recipe in {RECIPE_DIR}")
        parent = read_toml(base_path, "recipe")
        data = {**parent, **data, "config": _merged(parent.get("config", {}), data.get("config", {}))}
    if not isinstance(data.get("preset"), str):
        raise ConfigError(f"recipe {path}: expected preset = \"NAME\" (the config preset every cell starts from), "
                          f"got {data.get('preset')!r}")
    seeds = data.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"recipe {path}: seeds={seeds!r}: expected an integer >= 1")
    methods = data.get("methods", {})
    if not isinstance(methods, dict):
        raise ConfigError(f"recipe {path}: expected [methods.NAME] tables, got methods = {methods!r}")
    for method in methods:
        METHODS.get(method)  # an unknown name is an error that lists the known ones
    jobs = data.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"recipe {path}: jobs={jobs!r}: expected an integer >= 1 (cells run side by side)")
    unknown = sorted(set(data) - {"base", "preset", "seeds", "jobs", "config", "methods", "comparisons",
                                  "headline"})
    if unknown:
        raise ConfigError(f"{path}: unknown recipe keys {', '.join(unknown)}; a recipe has preset, seeds, [config] "
                          "(settings every cell shares), base (a recipe this one varies), jobs (cells run side by "
                          "side), comparisons ([method, comparator] pairs), [headline] and [methods.NAME] overrides")
    comparisons = [tuple(c) for c in data.get("comparisons", [])]
    for c in comparisons:
        if len(c) != 2:
            raise ConfigError(f"{path}: comparison {list(c)} must name a method and its comparator")
        for name in c:
            METHODS.get(name)
    headline = parse_headline(data["headline"], str(path)) if "headline" in data else None
    for name in headline.methods if headline else []:
        METHODS.get(name)
    recipe = Recipe(path.stem, data["preset"], int(data.get("seeds", 1)), data.get("config", {}),
                    {m: list(v.get("overrides", [])) for m, v in methods.items()}, comparisons, headline, jobs)
    load_config(recipe.preset, tables=[recipe.config])  # a bad key or value is reported before any cell runs
    return recipe


def _merged(base: dict, top: dict) -> dict:
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in top.items()}}


@dataclass
class Cell:
    method: MethodSpec
    seed: int
    run_dir: Path
    config: MTConfig
    overrides: list[str]
    ignored: list[str] = field(default_factory=list)  # user settings a method's definition overrules

    @property
    def label(self) -> str:
        return f"{self.method.name} (seed {self.seed})"

    @property
    def summary(self) -> dict | None:
        """The summary the cell's run wrote when it last ended, or None."""
        from mt.records import read_json
        from mt.rundir import SUMMARY

        path = self.run_dir / SUMMARY
        return read_json(path, "a run summary") if path.exists() else None

    @property
    def finished(self) -> bool:
        """The cell's run ended at the iterations asked for now (or by its stop rule), so it is read back, not
        trained. A run that ended at fewer (``run.iterations`` raised since) goes on from where it ended."""
        return self._ended(self.summary)

    def _ended(self, summary: dict | None) -> bool:
        return summary is not None and (summary["stopped_by_rule"]
                                        or summary["iterations_done"] >= self.config.run.iterations)

    @property
    def status(self) -> str:
        summary = self.summary
        if self._ended(summary):
            return "done"
        if summary is not None:
            return f"to extend ({summary['iterations_done']} done)"
        return "partial" if self.run_dir.exists() else "to run"


def method_overrides(spec: MethodSpec, user: list[str], recipe: list[str] = ()) -> tuple[list[str], list[str]]:
    """(overrides, ignored): the method's option values, the recipe's and the user's settings, then the settings
    that define the method, which overrule a user setting of the same key (returned as ignored)."""
    defining = {o.split("=", 1)[0].strip() for o in spec.overrides}
    ignored = [o for o in user if o.split("=", 1)[0].strip() in defining]
    options = [f"method.{k}={_toml(v)}" for k, v in spec.option_values.items()]
    return [*options, *recipe, *(o for o in user if o not in ignored), *spec.overrides], ignored


def cell_config(recipe: Recipe, spec: MethodSpec, seed: int, user: list[str]) -> tuple[MTConfig, list[str], list[str]]:
    overrides, ignored = method_overrides(spec, user, recipe.method_overrides.get(spec.name, []))
    overrides += [f"run.seed={seed}", f"run.name={spec.name}"]
    return load_config(recipe.preset, overrides=overrides, tables=[recipe.config]), overrides, ignored


def plan(recipe: Recipe, methods: list[str], seeds: int, runs_root: Path, user: list[str]) -> list[Cell]:
    cells = []
    for name in methods:
        spec = METHODS.get(name)
        for seed in range(seeds):
            cfg, overrides, ignored = cell_config(recipe, spec, seed, user)
            cells.append(Cell(spec, seed, runs_root / recipe.name / name / f"seed-{seed}", cfg, overrides, ignored))
    return cells


def gold_world(cfg: MTConfig) -> WorldConfig | None:
    """``cfg``'s gold world when it runs on the world, else None."""
    return cfg.world if cfg.run.env == "world" else None


def world_of(cells: list[Cell]) -> WorldConfig | None:
    """The gold world the planned cells run on, with every override applied (a headline variant's, --set),
    else None: what a table's caption must name."""
    return gold_world(cells[0].config) if cells else None


def _toml(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
