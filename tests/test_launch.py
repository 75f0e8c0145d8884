"""Updates under a launcher: the same call on every rank, rank 0's result back, same weights as in-process."""

from __future__ import annotations

import sys

import pytest
import torch

from mt.config import load_config
from mt.launch import run_launched
from mt.records import InputError


def test_result_of_the_launched_call_comes_back(tmp_path):
    assert run_launched("json:dumps", [sys.executable], tmp_path, obj=[1, 2]) == "[1, 2]"
    assert not list(tmp_path.iterdir())  # request and result are cleaned up


def test_arguments_that_do_not_pickle_are_one_clear_error(tmp_path):
    def local_trainer():
        return None

    with pytest.raises(InputError, match="cannot run under --launcher"):
        run_launched("json:dumps", [sys.executable], tmp_path, obj=local_trainer)


def test_a_failed_launch_names_the_command_and_status(tmp_path):
    with pytest.raises(RuntimeError, match="exited with status 1"):
        run_launched("json:no_such_function", [sys.executable], tmp_path)


def _pairs():
    prompts = [[{"role": "user", "content": f"add {i}+{i}"}] for i in range(8)]
    return [{"prompt": p, "chosen": str(2 * i), "rejected": str(i)} for i, p in enumerate(prompts)]


def _weights(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path).state_dict()


LAUNCHERS = [
    pytest.param([sys.executable], id="python"),
    pytest.param([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"], id="accelerate"),
]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launched_rm_update_matches_in_process(tiny_models, tmp_path, launcher):
    from mt.updates import train_reward_model

    _, reward = tiny_models
    cfg = load_config("tiny")
    local, _ = train_reward_model(str(reward), _pairs(), cfg.mstep, cfg.models, tmp_path / "local", seed=3)
    launched, metrics = train_reward_model(str(reward), _pairs(), cfg.mstep, cfg.models, tmp_path / "launched",
                                           seed=3, launcher=launcher)
    assert launched == tmp_path / "launched" / "model" and metrics["rm_steps"] >= 1
    a, b = _weights(local), _weights(launched)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["score.weight"], _weights(reward)["score.weight"])  # the update did train
