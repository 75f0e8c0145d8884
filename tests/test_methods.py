"""Each baseline's distinguishing rule, checked on hand-computed values or on a tiny run."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from reproduce.methods.sppo import sigmoid, sppo_loss, targets, win_probabilities


def test_sppo_win_probabilities_include_the_self_term():
    s = [2.0, 0.0, -1.0]
    p = win_probabilities(s)
    assert p[0] == pytest.approx((0.5 + sigmoid(2.0) + sigmoid(3.0)) / 3)
    assert p[2] == pytest.approx((sigmoid(-3.0) + sigmoid(-1.0) + 0.5) / 3)
    others = win_probabilities(s, include_self=False)
    assert others[0] == pytest.approx((sigmoid(2.0) + sigmoid(3.0)) / 2)
    assert sum(p) == pytest.approx(len(s) / 2)  # P_ij + P_ji = 1, so the p_win average to 1/2


def test_sppo_targets_per_variant():
    assert targets(0.8, 0.3, 0.9, 0.1, "sppo") == pytest.approx((3.0, -2.0))
    assert targets(0.8, 0.3, 0.9, 0.1, "sppo_single") == pytest.approx((4.0, -4.0))
    assert targets(0.8, 0.3, 0.9, 0.1, "sppo_hard") == pytest.approx((5.0, -5.0))
    with pytest.raises(ValueError):
        targets(0.5, 0.5, 0.5, 0.1, "other")
    assert sppo_loss(1.0, -1.0, 3.0, -2.0) == pytest.approx(0.5 * (4 + 1))


@pytest.mark.parametrize("variant, weight", [("sppo", 0.5), ("sppo_hard", 1.0)])
def test_sppo_trainer_loss_equals_the_released_formula(tiny_models, tmp_path, variant, weight):
    """With lr 0 the policy equals the reference, so the log-ratios are 0 and the loss is known exactly."""
    from mt.config import EStepConfig, ModelsConfig
    from mt.updates import train_dpo
    from reproduce.methods.sppo import sppo_trainer_cls

    beta = 0.1
    t_w, t_l = targets(0.8, 0.3, 0.9, beta, variant)
    pairs = [{"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": "ab", "rejected": "ba",
              "target_chosen": t_w, "target_rejected": t_l} for i in range(4)]
    cfg = EStepConfig(learning_rate=0.0, global_batch_size=4, per_device_batch_size=4, save_steps=100,
                      gradient_checkpointing=False, logging_steps=1, max_length=64)
    _, metrics = train_dpo(str(tiny_models[0]), pairs, cfg, ModelsConfig(), tmp_path, 0,
                           trainer_cls=sppo_trainer_cls(beta), extra_columns=("target_chosen", "target_rejected"),
                           dpo_overrides={"loss_type": ["sppo_hard"], "beta": beta, "precompute_ref_log_probs": True,
                                          "loss_weights": [weight]})
    expected = sppo_loss(0.0, 0.0, t_w, t_l) * (2 * weight)
    assert metrics["loss_first"] == pytest.approx(expected, rel=1e-5)


def digest(folder: str) -> str:
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_iterative_dpo_never_changes_the_rm_and_sppo_runs(small_world, small_world_overrides, tmp_path):
    world = small_world
    from mt.progress import QUIET
    from reproduce.recipes import load_recipe, plan
    from reproduce.tables import run_cell

    rm_before = digest(world.reward)
    user = [*small_world_overrides, "data.max_prompts=60", "run.iterations=2"]
    cells = plan(load_recipe("tiny"), ["iterative-dpo", "sppo", "offline-dpo"], 1, tmp_path, user)
    sppo_cell = next(c for c in cells if c.method.name == "sppo")
    sppo_cell.config.run.iterations = 1  # one SPPO iteration shows its update; iterative DPO checks the method's count
    results = {c.method.name: run_cell(c, QUIET) for c in cells}
    it = results["iterative-dpo"]
    assert it.iterations_done == 3 and not it.stopped  # the method's three iterations, not the --set
    assert digest(world.reward) == rm_before
    summary_rm = Path(it.run_dir, "summary.json").read_text()
    assert world.reward in summary_rm
    assert not list(Path(it.run_dir).glob("iter_*/mstep_*"))  # the M-step never ran
    pairs = Path(it.run_dir, "iter_1", "estep_pairs", "DONE.json").read_text()
    assert '"pair_rule": "max_min"' in pairs
    sppo = results["sppo"]
    assert sppo.iterations_done == 1 and 0 <= sppo.final["gold_mean"] <= 1
    assert '"sppo_variant": "sppo"' in Path(sppo.run_dir, "iter_1", "estep_pairs", "DONE.json").read_text()
    offline = results["offline-dpo"]
    assert offline.iterations_done == 1
    assert '"labeller": "gold"' in Path(offline.run_dir, "iter_1", "estep_score", "DONE.json").read_text()
    assert offline.samples == 5 * 60  # all three parts (20 prompts each), K = 5
    assert not math.isnan(offline.final["gold_win_rate_vs_pi0"])
    # Each run is bound to the build of the world it was measured on (a resume on another build is refused).
    bound = json.loads(Path(offline.run_dir, "environment.json").read_text())
    assert bound == {"world_digest": world.manifest["digest"],
                     "world_fingerprint": world.manifest["fingerprint"]["numbers"]}
    assert offline.final["world_fingerprint"] == bound["world_fingerprint"]


@pytest.mark.slow
def test_table1_command_writes_tables_and_curves(small_world, small_world_args, tmp_path):
    from typer.testing import CliRunner

    from reproduce.cli import app

    def table1(name: str, *methods: str, jobs: int) -> list[str]:
        return ["table1", "--preset", "tiny", "--seeds", "1", *(a for m in methods for a in ("-m", m)), "--jobs", str(jobs),
                "--runs", str(tmp_path / name / "runs"), "--out", str(tmp_path / name / "out"), "--quiet",
                *small_world_args, "--set", "data.max_prompts=90"]

    args = table1("both", "mutual-taught", "mt-no-rm-update", jobs=2)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "both" / "out"
    for name in ("table1", "table2", "table3"):
        assert (out / f"{name}.md").exists() and (out / f"{name}.tex").exists() and (out / f"{name}.csv").exists()
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "Not run here: offline-dpo" in (out / "table1.md").read_text()
    # A second invocation reads the finished cells back instead of training again.
    runs = tmp_path / "both" / "runs"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in runs.glob("**/DONE.json")}
    cells = (out / "cells.json").read_text()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and (out / "cells.json").read_text() == cells
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in runs.glob("**/DONE.json")} == before
    # Two cells side by side (each in a worker process) give the numbers that one cell run alone gives.
    result = CliRunner().invoke(app, table1("alone", "mutual-taught", jobs=1))
    assert result.exit_code == 0, result.output

    def mt_rows(folder):
        rows = next(c["rows"] for c in json.loads((folder / "cells.json").read_text()) if c["method"] == "mutual-taught")
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]

    assert len(mt_rows(out)) >= 2 and mt_rows(tmp_path / "alone" / "out") == mt_rows(out)


@pytest.mark.slow
def test_rlp_and_seam_filter_methods_run(small_world, small_world_overrides, tmp_path):
    import json

    from mt.progress import QUIET
    from reproduce.recipes import load_recipe, plan
    from reproduce.tables import run_cell

    user = [*small_world_overrides, "data.max_prompts=60"]
    recipe = load_recipe("tiny")
    cells = [*plan(recipe, ["rlp-spg", "rlp-uml"], 1, tmp_path, [*user, "method.human_pairs_limit=64"]),
             *plan(recipe, ["iterative-dpo-seam-filter"], 1, tmp_path, user)]
    for cell in cells:  # one iteration shows every stage these methods add; their own counts are for the tables
        cell.config.run.iterations = 1
    results = {c.method.name: run_cell(c, QUIET) for c in cells}

    def done(name, t, stage):
        return json.loads(Path(results[name].run_dir, f"iter_{t}", stage, "DONE.json").read_text())["metrics"]

    spg = done("rlp-spg", 1, "mstep_pairs")
    assert spg["human_pairs"] == 64 and spg["spg_judge"] == "exact" and spg["rm_train_pairs"] >= 64
    assert done("rlp-spg", 1, "mstep_train")["rlp_variant"] == "spg"
    assert done("rlp-uml", 1, "mstep_pairs")["uml_view_pairs"] > 0
    assert done("rlp-uml", 1, "mstep_train")["rlp_variant"] == "uml"
    filt = done("iterative-dpo-seam-filter", 1, "seam_filter")
    assert filt["dropped"] == 4 and filt["kept"] == 16 and filt["seam_dropped_mean"] >= filt["seam_kept_mean"]
    assert "seam" in results["rlp-uml"].final  # SEAM between the final policy and RM, every iteration
