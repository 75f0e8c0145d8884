"""Tables: published numbers as data, cells planned on equal terms, rendering in three formats."""

import dataclasses
from pathlib import Path

import pytest

from mt.config import ConfigError
from reproduce.methods import METHODS
from reproduce.published import load_published
from reproduce.recipes import load_recipe, plan, world_of
from reproduce.render import to_markdown
from reproduce.tables import CellResult, build_table, render_tables


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
    from reproduce.tables import initial_cells

    def cell(method, gold, seed=0):
        return CellResult(method, seed, "run", "digest", {}, [{"iteration": 0, "gold_mean": gold}], 1, False, 0, "")

    # Meta-Rewarding's iteration 0 is its judge-trained policy, not pi_0: it must not become the initial row.
    chosen = initial_cells([cell("meta-rewarding", 0.5), cell("mutual-taught", 0.6), cell("sppo", 0.6),
                            cell("sppo", 0.7, seed=1)])
    assert [(c.method, c.seed) for c in chosen] == [("mutual-taught", 0), ("sppo", 1)]
    assert initial_cells([cell("meta-rewarding", 0.5)]) == []


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


def test_cells_run_side_by_side_as_the_recipe_or_jobs_says_at_most_one_per_cpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    tiny, paper = load_recipe("tiny"), load_recipe("paper")
    assert (tiny.jobs, paper.jobs) == (2, 1)
    assert (tiny.workers(), paper.workers(), tiny.workers(1), paper.workers(2)) == (2, 1, 1, 2)
    assert load_recipe("tiny-hack").workers() == 2  # a variant inherits its base's jobs
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert (tiny.workers(), tiny.workers(8)) == (1, 1)


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


def measured(method, seed, values, stopped=False, stop_rule=True, key="gold_win_rate_vs_pi0"):
    return CellResult(method, seed, "run", "digest", {key: sum(values) / len(values)}, [], 1, stopped, 0, "",
                      stop_rule, {key: values})


def test_cells_show_a_bootstrap_interval_over_seeds_then_prompts():
    from reproduce.stats import hierarchical_bootstrap
    from reproduce.tables import fmt_cells

    cells = [measured("m", 0, [0.5, 0.7, 0.6]), measured("m", 1, [0.4, 0.4, 0.5])]
    got = fmt_cells(cells, "gold_win_rate_vs_pi0", 100)
    interval = hierarchical_bootstrap([[0.5, 0.7, 0.6], [0.4, 0.4, 0.5]])
    assert got == f"{100 * interval.mean:.1f} [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"
    assert got.startswith("51.7 [")
    # A scalar measurement of one seed is shown as it is; a point mass has a zero-width interval.
    assert fmt_cells([measured("m", 0, [0.25])], "gold_win_rate_vs_pi0", 1.0) == "0.250"
    assert fmt_cells([measured("m", s, [0.5] * 4) for s in range(3)], "gold_win_rate_vs_pi0", 100) == (
        "50.0 [50.0, 50.0]")
    assert fmt_cells(cells, "other", 1.0) == "-"


def test_the_stop_rule_firing_rate_is_its_own_column():
    from reproduce.tables import fmt_stop_rate

    cells = [measured("m", s, [0.5], stopped=s < 1) for s in range(4)]
    assert fmt_stop_rate(cells) == "1/4 [5, 70]%"  # Wilson 95% interval of 1 in 4
    assert fmt_stop_rate([measured("m", 0, [0.5], stop_rule=False)]) == "-"


def test_tables_render_markdown_latex_csv(tmp_path):
    results = [cell("mutual-taught", 0, 0.4, 0.5), cell("mutual-taught", 1, 0.6, 0.7), cell("iterative-dpo", 0, 0.3, 0.4)]
    recipe = load_recipe("tiny")
    df = build_table("table1", results, recipe)
    assert list(df["method"]) == ["initial policy (pi_0)", "iterative-dpo", "mutual-taught"]
    row = df[df["method"] == "mutual-taught"].iloc[0]
    assert row["published AE2 LC"] == "54.1" and row["gold win rate vs pi_0 (%)"] == "50.0 [40.0, 60.0]"
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


def test_a_method_keeps_its_colour_in_panels_other_methods_are_missing_from():
    import matplotlib.pyplot as plt

    from reproduce.plots import draw_curves

    no_rm, mt = cell("mt-no-rm-update", 0, 0.5, 0.6), cell("mutual-taught", 0, 0.55, 0.7)
    mt.rows[1]["pseudo_gold_accuracy"] = 0.7  # only a method with an M-step logs its pseudo-pairs
    fig = draw_curves([no_rm, mt], [("gold_mean", "gold"), ("pseudo_gold_accuracy", "pseudo-pairs")])
    colour = {ax.get_title(): {line.get_label(): line.get_color() for line in ax.get_lines()} for ax in fig.axes}
    plt.close(fig)
    assert list(colour["pseudo-pairs"]) == ["mutual-taught"]
    assert colour["pseudo-pairs"]["mutual-taught"] == colour["gold"]["mutual-taught"] != colour["gold"]["mt-no-rm-update"]


def test_paired_rows_compare_seed_by_seed_and_with_pi0():
    from reproduce.paired import paired_rows
    from reproduce.stats import paired_difference

    def cell(method, seed, values, initial=None):
        c = measured(method, seed, values)
        c.rows = [{"iteration": 0}]
        c.initial_per_prompt = {"gold_win_rate_vs_pi0": initial or [0.5] * len(values)}
        return c

    results = [cell("mutual-taught", s, [0.6 + 0.1 * s, 0.7, 0.5]) for s in range(3)]
    results += [cell("iterative-dpo", s, [0.5, 0.6, 0.4 + 0.1 * s]) for s in range(2)]
    metrics = [("gold_win_rate_vs_pi0", "gold win rate vs pi_0 (%)", 100.0)]
    rows = paired_rows(results, [("mutual-taught", "iterative-dpo"), ("mutual-taught", "sppo")], metrics)
    by_pair = {(r["method"], r["comparator"]): r for r in rows}
    assert set(by_pair) == {("mutual-taught", "pi_0"), ("iterative-dpo", "pi_0"), ("mutual-taught", "iterative-dpo")}
    mt_it = by_pair[("mutual-taught", "iterative-dpo")]
    assert mt_it["paired seeds"] == 2  # seed 2 has no iterative-dpo cell
    want = paired_difference({s: [0.6 + 0.1 * s, 0.7, 0.5] for s in range(2)},
                             {s: [0.5, 0.6, 0.4 + 0.1 * s] for s in range(2)})
    assert mt_it["mean difference"] == f"{100 * want.mean_diff:+.1f}" == "+10.0"
    assert mt_it["p (sign-flip)"] == f"{want.p_value:.3g}" == "0.5"  # two seeds: 2/4 at best
    assert by_pair[("mutual-taught", "pi_0")]["paired seeds"] == 3


def test_a_recipe_varies_its_base_and_every_caption_names_the_regime(tmp_path):
    tiny, hack = load_recipe("tiny"), load_recipe("tiny-hack")
    assert (tiny.world.regime, hack.world.regime) == ("shift", "hack") and load_recipe("paper").world is None
    assert hack.comparisons == tiny.comparisons and hack.method_overrides == tiny.method_overrides
    assert hack.preset == tiny.preset and hack.seeds == tiny.seeds
    cells = plan(hack, ["mutual-taught"], 1, tmp_path, [])
    assert cells[0].config.world.regime == "hack" and cells[0].run_dir.parts[-3] == "tiny-hack"
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "nope"\n')
    with pytest.raises(ConfigError, match="base='nope'"):
        load_recipe(str(bad))
    cell = CellResult("mutual-taught", 0, "r", "d", {"gold_win_rate_vs_pi0": 0.6, "gold_mean": 0.7}, [], 1, False,
                      0, "")
    written = render_tables(["table1"], [cell], hack, tmp_path / "out")
    text = written[0].read_text()
    assert "[gold world, hack regime: r_0's labeller added 0.3 to a marked answer's gold" in text
    assert "charges the marker 0.1" in text
    # A hack world whose cue is in the demonstrations says so instead.
    demo_cue = dataclasses.replace(hack, config={"world": {"regime": "hack"}})
    text = render_tables(["table1"], [cell], demo_cue, tmp_path / "out2")[0].read_text()
    assert "[gold world, hack regime: the marker opens right answers far more often" in text
    # The headline's hack variant is the tiny recipe with overrides: its caption names the cells' world.
    variant = plan(tiny, ["mutual-taught"], 1, tmp_path, ["world.regime=hack", "world.hack_label_bias=0.6"])
    assert world_of(variant).hack_label_bias == 0.6 and world_of(plan(load_recipe("paper"), ["mutual-taught"], 1,
                                                                          tmp_path, [])) is None
    text = render_tables(["table1"], [cell], tiny, tmp_path / "out3", world=world_of(variant))[0].read_text()
    assert "[gold world, hack regime: r_0's labeller added 0.6" in text


def test_a_cell_run_to_fewer_iterations_than_asked_is_extended_not_read_back(tmp_path):
    import json

    def cell(iterations):
        return plan(load_recipe("tiny"), ["mutual-taught"], 1, tmp_path, [f"run.iterations={iterations}"])[0]

    assert cell(2).status == "to run"
    cell(2).run_dir.mkdir(parents=True)
    assert not cell(2).finished and cell(2).status == "partial"
    summary = cell(2).run_dir / "summary.json"
    summary.write_text(json.dumps({"iterations_done": 2, "stopped_by_rule": False}))
    assert cell(2).finished and cell(1).finished
    assert not cell(3).finished and cell(3).status == "to extend (2 done)"
    # A run its stop rule ended is finished at any number of iterations.
    summary.write_text(json.dumps({"iterations_done": 1, "stopped_by_rule": True}))
    assert cell(3).finished and cell(3).status == "done"
