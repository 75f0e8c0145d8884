"""Tables: published numbers as data, cells planned on equal terms, rendering in three formats."""

from pathlib import Path

import pytest

from mt.config import ConfigError
from reproduce.methods import METHODS
from reproduce.published import load_published
from reproduce.recipes import load_recipe, plan
from reproduce.render import to_markdown
from reproduce.tables import CellResult, build_table, fmt_mean_std, render_tables


def test_published_rows_carry_sources_and_the_papers_numbers():
    t1 = {(r["key"], r["source"]): r for r in load_published("table1")}
    assert t1[("mutual-taught", "S1")]["ae2_lc"] == 54.1 and t1[("mutual-taught", "S1")]["arena_hard"] == 38.4
    assert t1[("iterative-dpo", "S1")]["arena_hard"] == 38.5 and t1[("iterative-dpo", "S2")]["arena_hard"] == 34.7
    assert t1[("llama-3-8b-instruct", "S1")]["ae2_lc"] == 23.1
    t2 = {(r["key"], r["source"]): r for r in load_published("table2")}
    assert t2[("mutual-taught", "S1")]["average"] == 90.3 and t2[("initial", "S2")]["average"] == 84.7
    t3 = {r["key"]: r["ae2_lc"] for r in load_published("table3")}
    assert t3 == {"mutual-taught": 54.1, "mt-no-rm-update": 47.2, "mt-no-selection": 50.3, "mt-no-filter": 51.8}
    for table in ("table1", "table2", "table3"):
        assert all(r["source"] for r in load_published(table))


def test_published_rows_need_a_source(tmp_path):
    from mt.records import InputError

    (tmp_path / "table3.csv").write_text("method,label,ae2_lc,source\nx,X,1.0,\n")
    with pytest.raises(InputError, match="line 2: every published number needs a source"):
        load_published("table3", tmp_path)


def test_every_table_method_is_registered_with_a_citation():
    from reproduce.tables import TABLE_METHODS

    for name in {m for ms in TABLE_METHODS.values() for m in ms}:
        assert METHODS.get(name).citation


def test_initial_row_comes_from_a_method_that_starts_at_pi0():
    from reproduce.tables import initial_row

    def cell(method, gold):
        return CellResult(method, 0, "run", "digest", {}, [{"iteration": 0, "gold_mean": gold}], 1, False, 0, "")

    # Meta-Rewarding's iteration 0 is its judge-trained policy, not pi_0: it must not become the initial row.
    assert initial_row([cell("meta-rewarding", 0.5), cell("mutual-taught", 0.6)])["gold_mean"] == 0.6
    assert initial_row([cell("meta-rewarding", 0.5)]) == {}


def test_cells_share_everything_but_what_defines_the_method(tmp_path):
    recipe = load_recipe("tiny")
    cells = plan(recipe, ["mutual-taught", "iterative-dpo", "sppo"], 2, tmp_path, ["data.max_prompts=90"])
    assert len(cells) == 6
    by = {(c.method.name, c.seed): c.config for c in cells}
    mt, it = by[("mutual-taught", 0)], by[("iterative-dpo", 0)]
    assert mt.sampling == it.sampling and mt.models == it.models and mt.world == it.world
    assert mt.estep.learning_rate == it.estep.learning_rate and mt.data.max_prompts == 90 == it.data.max_prompts
    assert it.estep.pair_rule == "max_min" and not it.mstep.enabled and it.run.iterations == 3
    assert by[("sppo", 1)].method["beta"] == 0.1 and by[("sppo", 1)].run.seed == 1
    assert cells[0].run_dir == tmp_path / "tiny" / "mutual-taught" / "seed-0"
    ignored = plan(recipe, ["offline-dpo", "mutual-taught"], 1, tmp_path, ["run.iterations=5"])
    assert ignored[0].config.run.iterations == 1 and ignored[0].ignored == ["run.iterations=5"]
    assert ignored[1].config.run.iterations == 5 and not ignored[1].ignored


def test_unknown_recipe_and_method_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    from mt.registry import UnknownName

    with pytest.raises(UnknownName, match="unknown method 'dpo'; known: .*mutual-taught"):
        plan(load_recipe("tiny"), ["dpo"], 1, tmp_path, [])


def cell(method, seed, win, gold, fixed=0.6, onpolicy=0.5):
    final = {"iteration": 2, "gold_win_rate_vs_pi0": win, "gold_mean": gold, "rm_fixed_test_accuracy": fixed,
             "rm_onpolicy_accuracy": onpolicy, "rm_hacking_gap": 0.1}
    init = {"iteration": 0, "gold_win_rate_vs_pi0": 0.5, "gold_mean": 0.6, "rm_fixed_test_accuracy": 0.64,
            "rm_onpolicy_accuracy": 0.58, "rm_hacking_gap": 0.0}
    return CellResult(method, seed, "run", "digest", final, [init, final], 2, False, 100, "")


def test_mean_and_std_over_seeds():
    assert fmt_mean_std([0.5, 0.7], 100) == "60.0 ± 14.1"
    assert fmt_mean_std([0.25], 1.0) == "0.250"
    assert fmt_mean_std([None], 1.0) == "-"


def test_tables_render_markdown_latex_csv(tmp_path):
    results = [cell("mutual-taught", 0, 0.4, 0.5), cell("mutual-taught", 1, 0.6, 0.7), cell("iterative-dpo", 0, 0.3, 0.4)]
    recipe = load_recipe("tiny")
    df = build_table("table1", results, recipe)
    assert list(df["method"]) == ["initial policy (pi_0)", "iterative-dpo", "mutual-taught"]
    row = df[df["method"] == "mutual-taught"].iloc[0]
    assert row["published AE2 LC"] == "54.1" and row["gold win rate vs pi_0 (%)"] == "50.0 ± 14.1"
    assert row["seeds"] == "2"
    written = render_tables(["table1", "table2", "table3"], results, recipe, tmp_path)
    assert {p.name for p in written} == {f"table{i}.{ext}" for i in (1, 2, 3) for ext in ("md", "tex", "csv")}
    md = (tmp_path / "table1.md").read_text()
    assert "not AlpacaEval or Arena-Hard numbers" in md and "| mutual-taught | 54.1 | 38.4 |" in md
    assert r"\begin{tabular}" in (tmp_path / "table2.tex").read_text()
    assert "RM after mutual-taught" in (tmp_path / "table2.csv").read_text()


def test_markdown_renderer():
    import pandas as pd

    assert to_markdown(pd.DataFrame({"a": [1], "b": ["x"]})) == "| a | b |\n|---|---|\n| 1 | x |\n"


def test_curves_png(tmp_path):
    from reproduce.plots import plot_curves

    path = plot_curves([cell("mutual-taught", 0, 0.4, 0.5)], tmp_path / "c.png")
    assert path == tmp_path / "c.png" and path.stat().st_size > 1000 and Path(path).read_bytes()[:4] == b"\x89PNG"
