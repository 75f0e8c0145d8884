"""SEAM with real (tiny) models: the PM's log-probabilities, the loop diagnostic and `mt-repro seam`."""

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from mt.seam import compute_seam, seam_diagnostic
from mt.seam.judge import PolicyLogProbs
from reproduce.seam_cli import seam_app

runner = CliRunner()
PROMPTS = [[{"role": "user", "content": "add 2+2"}], [{"role": "user", "content": "reverse abcdefgh"}],
           [{"role": "user", "content": "sort 3 1 2"}]]
ANSWERS = ["4", "hgfedcba and then some more words", "1 2 3"]


@pytest.fixture(scope="module")
def scorer(tiny_models):
    pm = PolicyLogProbs(str(tiny_models[0]), dtype="float32", batch_size=2, max_answer_tokens=128)
    yield pm
    pm.close()


def reference_logprob(model, context, scored):
    """Unpadded, one sequence at a time: the sum of log p(token | everything before it)."""
    ids = torch.tensor([context + scored])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(logp[len(context) - 1 + t, tok].item() for t, tok in enumerate(scored))


def test_answer_span_is_the_answer_then_eos(scorer):
    context, scored = scorer.encode(PROMPTS[1], ANSWERS[1])
    assert scored[-1] == scorer.tokenizer.eos_token_id
    assert scorer.tokenizer.decode(scored[:-1]) == ANSWERS[1]
    assert context[-1] == scorer.tokenizer.convert_tokens_to_ids("<|assistant|>")


def test_batched_left_padded_log_probs_equal_one_sequence_at_a_time(scorer):
    got = scorer.score(PROMPTS, ANSWERS)
    with torch.no_grad():
        for prompt, answer, g in zip(PROMPTS, ANSWERS, got, strict=True):
            context, scored = scorer.encode(prompt, answer)
            expected = reference_logprob(scorer.model, context, scored)
            assert g["pm_sum"] == pytest.approx(expected, abs=1e-4)
            assert g["pm_mean"] == pytest.approx(expected / len(scored), abs=1e-5)
            assert g["pm_tokens"] == len(scored)


def test_answers_are_capped_before_eos(tiny_models):
    pm = PolicyLogProbs(str(tiny_models[0]), dtype="float32", max_answer_tokens=5)
    _, scored = pm.encode(PROMPTS[0], "a long answer of many characters")
    assert len(scored) == 6 and scored[-1] == pm.tokenizer.eos_token_id
    assert pm.tokenizer.decode(scored[:-1]) == "a lon"
    pm.close()


def test_compute_seam_records_provenance_and_scores(tiny_models):
    rows = [{"id": str(i), "prompt": p, "answer": a} for i, (p, a) in enumerate(zip(PROMPTS, ANSWERS, strict=True))]
    result = compute_seam(str(tiny_models[0]), str(tiny_models[1]), rows)
    assert result["mode"] == "weighted" and result["reconstructed"] is True
    assert result["source"] == "corrupt" and result["source_backend"] == "text-edits"
    assert "not published" in result["reconstruction_note"]
    assert result["versions"]["torch"] == torch.__version__
    for record in result["prompts"]:
        assert len(record["worse"]) == 4
        assert record["hacks"] == [w["rm"] > record["gold"]["rm"] for w in record["worse"]]
        assert 0 <= record["seam"] < 1
    seams = [r["seam"] for r in result["prompts"]]
    assert result["dataset"]["seam"] == pytest.approx(sum(seams) / len(seams))


@pytest.mark.slow
def test_diagnostic_on_the_gold_world(small_world):
    world = small_world
    metrics = seam_diagnostic(world.policy, world.reward, world.split("eval"), limit=30, dtype="float32")
    assert metrics["seam_prompts"] == 30
    assert metrics["seam"] == metrics["seam_weighted"]
    for mode in ("weighted", "count", "pm_and_rm", "rank"):
        assert 0 <= metrics[f"seam_{mode}"] <= 1
    assert (metrics["seam_source"], metrics["seam_backend"]) == ("corrupt", "world-corrupt")
    assert metrics["seam_reconstructed"] is True
    # r_0 misjudges some corruptions of the world (its marker shortcut), but not all of them.
    assert 0 < metrics["seam_count"] < 1


def invoke(*args):
    return runner.invoke(seam_app, list(args), env={"COLUMNS": "200"})


@pytest.mark.slow
def test_cli_on_the_tiny_world(small_world, small_world_args, tmp_path):
    world = small_world
    result = invoke("--policy", "world", "--reward", "world", "--data", "world", *small_world_args,
                    "--source", "adv", "--mode", "count", "--limit", "12", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    assert "SEAM (count, reported)" in result.output and "highest-SEAM prompts" in result.output
    saved = json.loads((tmp_path / "seam.json").read_text())
    assert (saved["mode"], saved["source"], saved["source_backend"]) == ("count", "adv", "char-word-edits")
    assert saved["reconstructed"] is False and saved["reconstruction_note"]
    assert saved["data"].endswith("eval.jsonl") and saved["policy"] == world.policy
    assert len(saved["prompts"]) == 12 and saved["versions"]["mt-repro"] is not None
    assert saved["dataset"]["seam"] == pytest.approx(sum(r["seam"] for r in saved["prompts"]) / 12)


@pytest.mark.slow
def test_cli_reads_jsonl_with_other_column_names(small_world, tmp_path):
    world = small_world
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"q": r["prompt"][0]["content"], "gold": r["answer"]}) + "\n"
                            for r in world.split("eval")[:6]))
    result = invoke("--policy", world.policy, "--reward", world.reward, "--data", str(data), "--prompt-column", "q",
                    "--answer-column", "gold", "--source", "contrast", "--encoder", "char-ngram",
                    "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "seam.json").read_text())
    assert saved["source_backend"] == "retrieval:char-ngram" and len(saved["prompts"]) == 6


def test_cli_names_file_line_and_expectation_for_bad_rows(tmp_path, tiny_models):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"prompt": "q", "answer": "a"}) + "\n" + json.dumps({"prompt": "q"}) + "\n")
    result = invoke("--policy", str(tiny_models[0]), "--reward", str(tiny_models[1]), "--data", str(data))
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"{data}, line 2: no column 'answer'" in message and "gold answer" in message


def test_cli_rejects_an_unknown_mode():
    result = invoke("--policy", "p", "--reward", "r", "--data", "d", "--mode", "median")
    assert result.exit_code == 2 and "mode 'median' is not one of" in result.output


@pytest.mark.slow
def test_registered_as_a_subcommand_it_runs_as_mt_repro_seam(small_world_args, tmp_path):
    app = typer.Typer()
    app.add_typer(seam_app, name="seam")
    app.command("other")(lambda: None)
    result = runner.invoke(app, ["seam", "--policy", "world", "--reward", "world", "--data", "world",
                                 *small_world_args, "--limit", "3", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seam.json").exists()
