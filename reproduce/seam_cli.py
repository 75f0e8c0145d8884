"""`mt-repro seam`: SEAM between a policy and a reward model on prompts with gold answers.

Register in the main app with ``app.add_typer(seam_app, name="seam")``; the command is the
group's callback, so it runs as ``mt-repro seam --policy ... --reward ... --data ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .console import console, quiet_libraries, table, user_errors

seam_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

WORLD = "world"


def _world(preset: str, overrides: list[str] | None):
    from mt.checks import check_world
    from mt.config import load_config
    from mt.world.build import ensure_world

    cfg = load_config(preset, None, overrides or []).world
    check_world(cfg)
    return ensure_world(cfg)


def _check_local(policy: str, reward: str, data: str, out: Path) -> None:
    """The models, the data file and the output folder, on the disk, before any model or world is loaded."""
    from mt.checks import check_file, check_model, check_out_dir

    check_out_dir(out, "--out")
    if policy != WORLD:
        check_model(policy, "policy", key="--policy")
    if reward != WORLD:
        check_model(reward, "reward", key="--reward")
    if data != WORLD:
        check_file(data, "--data")


def _rows(data: str, limit: int | None, prompt_column: str, answer_column: str, id_column: str | None, world):
    from mt.seam import check_rows, load_rows

    if data == WORLD:
        return check_rows(world.split("eval")[:limit], f"{world.dir / 'eval.jsonl'}")
    return load_rows(data, prompt_column, answer_column, id_column, limit)


def _render(result: dict[str, Any], path: Path) -> None:
    summary = result["dataset"]
    rows = [{"quantity": f"SEAM ({result['mode']}, reported)", "value": summary["seam"]}]
    rows += [{"quantity": f"SEAM ({m})", "value": v} for m, v in summary["by_mode"].items() if m != result["mode"]]
    rows += [{"quantity": "RM hack rate (R(y_k) > R(y*))", "value": summary["hack_rate"]},
             {"quantity": "prompts", "value": summary["prompts"]},
             {"quantity": "worse answers", "value": summary["worse_answers"]}]
    rows += [{"quantity": f"SEAM, family {f}", "value": v} for f, v in summary.get("by_family", {}).items()]
    console.print(table(rows, title=f"SEAM: source {result['source']} ({result['source_backend']})"))
    top = sorted(result["prompts"], key=lambda r: -r["seam"])[:5]
    if top:
        from mt.chat import prompt_text

        console.print(table([{"id": r["id"], "prompt": prompt_text(r["prompt"])[:60], "seam": r["seam"],
                              "hacks": f"{sum(r['hacks'])}/{len(r['hacks'])}"} for r in top],
                            title="highest-SEAM prompts"))
    note = "reconstructed combination formula" if result["reconstructed"] else "the repository's literal count"
    console.print(f"[dim]mode {result['mode']}: {note}; {result['source_note']}[/]\nresults: [cyan]{path}[/]")


@seam_app.callback(invoke_without_command=True)
def seam(
    policy: Annotated[str, typer.Option(help="Policy model: hub id, folder, or 'world' (the gold world's pi_0).")],
    reward: Annotated[str, typer.Option(help="Reward model (one logit): hub id, folder, or 'world' (r_0).")],
    data: Annotated[str, typer.Option(help="JSONL of prompts with gold answers, or 'world' (its eval split).")],
    source: Annotated[str, typer.Option(help="Worse answers: contrast | corrupt | adv.")] = "corrupt",
    mode: Annotated[str, typer.Option(help="Combination: weighted | count | pm_and_rm | rank.")] = "weighted",
    limit: Annotated[int | None, typer.Option(help="Use the first N rows.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default results/seam/<source>-<mode>.")] = None,
    k: Annotated[int, typer.Option(help="Worse answers per prompt.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the worse-answer builders.")] = 0,
    encoder: Annotated[str, typer.Option(help="Contrast retrieval: auto | minilm | char-ngram.")] = "auto",
    prompt_column: Annotated[str, typer.Option(help="JSONL column with the prompt (text or messages).")] = "prompt",
    answer_column: Annotated[str, typer.Option(help="JSONL column with the gold answer.")] = "answer",
    id_column: Annotated[str | None, typer.Option(help="JSONL column with a row id; default the line.")] = "id",
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 16,
    preset: Annotated[str, typer.Option("--preset", "-p", help="Preset whose gold world 'world' means.")] = "tiny",
    overrides: Annotated[list[str] | None, typer.Option("--set", "-s", help="Preset override, e.g. world.dir=...")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
):
    """SEAM: how often the RM prefers worse answers to the gold one, weighted by how likely the policy says them."""
    quiet_libraries()
    from mt.progress import Reporter
    from mt.records import write_json
    from mt.seam import SeamConfig, compute_seam

    with user_errors():
        cfg = SeamConfig(source=source, mode=mode, k=k, seed=seed, encoder=encoder, dtype=dtype, batch_size=batch_size)
        out = out or Path("results") / "seam" / f"{source}-{mode}"
        _check_local(policy, reward, data, out)
        # A data file is read and checked before the world is built (minutes on first use).
        rows = None if data == WORLD else _rows(data, limit, prompt_column, answer_column, id_column, None)
        world = _world(preset, overrides) if WORLD in (policy, reward, data) else None
        if rows is None:
            rows = _rows(data, limit, prompt_column, answer_column, id_column, world)
        policy_path = world.policy if policy == WORLD else policy
        reward_path = world.reward if reward == WORLD else reward
        with Reporter(enabled=not quiet) as reporter:
            result = compute_seam(policy_path, reward_path, rows, cfg, reporter)
        result = {**result, "data": str(world.dir / "eval.jsonl") if data == WORLD else data}
        path = write_json(out / "seam.json", result)
    _render(result, path)
