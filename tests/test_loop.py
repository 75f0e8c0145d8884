"""The loop on untrained tiny models and a prompt file: failures stop at the stage that failed."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from mt.config import load_config
from mt.engine import Engine
from mt.errors import UserError
from mt.loop import StageError, run_mutual_taught, stage_seed


def small_config(tmp_path, policy, reward, prompts):
    return load_config("tiny", overrides=[
        "run.env=prompts", f"models.policy={policy}", f"models.reward={reward}", f"data.prompts={prompts}",
        "data.selection_size=4", "sampling.k=3", "sampling.max_new_tokens=4", "estep.save_steps=1",
        "estep.global_batch_size=4", "estep.per_device_batch_size=4", "mstep.global_batch_size=4",
        "mstep.per_device_batch_size=4", "run.iterations=1", "select.tau=0.0", "mstep.include_estep_pairs=true",
    ])


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(16)))
    return path


def test_one_iteration_on_a_prompt_file(tmp_path, tiny_models, prompts):
    cfg = small_config(tmp_path, *tiny_models, prompts)
    result = run_mutual_taught(cfg, tmp_path / "run")
    assert result.iterations_done == 1
    assert (tmp_path / "run" / "iter_1" / "mstep_train" / "model" / "model.safetensors").exists()
    data = json.loads((tmp_path / "run" / "data" / "DONE.json").read_text())["metrics"]
    assert data["size_selection"] == 4 and data["size_part_1"] == 4


def test_non_finite_reward_stops_at_the_scoring_stage_and_keeps_finished_ones(tmp_path, tiny_models, prompts):
    policy, reward = tiny_models
    broken = tmp_path / "nan-rm"
    rm = AutoModelForSequenceClassification.from_pretrained(reward)
    with torch.no_grad():
        rm.score.weight.fill_(float("nan"))
    rm.save_pretrained(broken)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(reward).save_pretrained(broken)
    with pytest.raises(StageError, match=r"stage iter_1/estep_score failed: reward model .*nan-rm: .*non-finite") as e:
        run_mutual_taught(small_config(tmp_path, policy, broken, prompts), tmp_path / "run")
    assert isinstance(e.value, UserError)  # the CLI prints it as one line, exit code 2
    assert (tmp_path / "run" / "iter_1" / "estep_generate" / "DONE.json").exists()
    assert not (tmp_path / "run" / "iter_1" / "estep_score").exists()


def test_stage_seeds_differ_by_stage_and_iteration():
    seeds = {stage_seed(0, t, s) for t in (1, 2) for s in ("estep_generate", "select", "mstep_generate")}
    assert len(seeds) == 6 and stage_seed(0, 1, "select") == stage_seed(0, 1, "select")
    assert stage_seed(1, 1, "select") != stage_seed(0, 1, "select")


def test_a_second_process_cannot_share_the_run_dir(tmp_path, tiny_models, prompts):
    from mt.rundir import RunDirError

    cfg = small_config(tmp_path, *tiny_models, prompts)
    first = Engine(cfg, tmp_path / "run")
    try:
        with pytest.raises(RunDirError, match="in use by another mt-repro process"):
            Engine(cfg, tmp_path / "run")
    finally:
        first.close()
