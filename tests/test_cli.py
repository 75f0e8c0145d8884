"""The CLI as a user meets it: help on every command, one clear error line for bad input."""

import pytest
from typer.testing import CliRunner

from reproduce.cli import app

runner = CliRunner()


def commands(typer_app, prefix=()):
    import typer.main

    group = typer.main.get_command(typer_app)
    stack = [(list(prefix), group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + [name], sub))


@pytest.mark.parametrize("path", list(commands(app)))
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_show_config_marks_reconstructed_values():
    result = runner.invoke(app, ["show-config", "--preset", "paper"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "meta-llama/Meta-Llama-3-8B-Instruct" in result.output
    assert "(reconstructed)" in result.output
    assert "Allowed values: in (0, 1]." in result.output  # sampling.top_p's range, from its field metadata


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--set", "estep.betta=1"], "unknown config key 'estep.betta'"),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--config", "/no/such.toml"], "does not exist"),
        (["train", "--set", "estep.beta=-0.1"], "estep.beta=-0.1: expected > 0"),
    ],
)
def test_bad_input_is_one_error_line(args, message, tmp_path):
    result = runner.invoke(app, [*args, "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_prompt_file_is_reported_before_any_training(tmp_path, tiny_models):
    policy, reward = tiny_models
    args = ["train", "--preset", "paper", "--run-dir", str(tmp_path / "r"), "--quiet",
            "--set", f"models.policy={policy}", "--set", f"models.reward={reward}",
            "--set", f"data.prompts={tmp_path / 'missing.jsonl'}", "--set", "sampling.backend=transformers"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "data.prompts" in result.output and "missing.jsonl: file not found" in result.output
    assert not (tmp_path / "r").exists()  # found on the disk before the run directory was made
