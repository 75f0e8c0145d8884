"""Prompt sources, the disjoint splits of a run, and their rotation between PM and RM updates.

A prompt row is ``{"id": str, "prompt": [chat messages], **extra}``; extra fields (e.g. the gold
world's task and answer) travel with the row untouched.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chat import as_messages
from .records import InputError, iter_jsonl, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from .method import Run
    from .rundir import StageContext

LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def prompt_id(messages: list[dict[str, str]]) -> str:
    return hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def _to_messages(value: Any, where: str, column: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise InputError(f"{where}: {column!r} is empty")
        return as_messages(value)
    if isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        messages = [{"role": m["role"], "content": m["content"]} for m in value]
        # A conversation that ends with the answer (as in preference datasets) is cut to its prompt.
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
        if messages:
            return messages
    raise InputError(
        f"{where}: {column!r} must be text or a list of {{'role', 'content'}} chat messages, "
        f"got {type(value).__name__} {str(value)[:60]!r}"
    )


def rows_to_prompts(rows: Iterable[tuple[str, dict[str, Any]]], column: str, id_column: str | None,
                    source: str) -> list[dict[str, Any]]:
    out, seen = [], set()
    for where, row in rows:
        if column not in row:
            raise InputError(f"{where}: no column {column!r} (columns: {', '.join(sorted(row))}); "
                             "set data.prompt_column")
        messages = _to_messages(row[column], where, column)
        if id_column is not None:
            if id_column not in row:
                raise InputError(f"{where}: no id column {id_column!r}; set data.id_column or leave it unset")
            pid = str(row[id_column])
        else:
            pid = prompt_id(messages)
        if pid in seen:
            continue
        seen.add(pid)
        extra = {k: v for k, v in row.items() if k not in (column, "id")}
        out.append({"id": pid, "prompt": messages, **extra})
    if not out:
        raise InputError(f"{source}: no prompts found")
    return out


def load_prompts(source: str, prompt_column: str = "prompt", id_column: str | None = None,
                 hub_split: str = "train") -> list[dict[str, Any]]:
    """Read prompts from a local file (JSONL rows are checked line by line) or a hub dataset id."""
    path = Path(source).expanduser()
    if path.suffix == ".jsonl":
        rows = ((f"{path}, line {n}", row) for n, row in iter_jsonl(path))
        return rows_to_prompts(rows, prompt_column, id_column, str(path))
    if path.suffix in LOCAL_SUFFIXES or path.is_dir():
        if not path.exists():
            raise InputError(f"prompt file {path} does not exist")
        dataset = _load_local(path, hub_split)
    else:
        dataset = _load_hub(source, hub_split)
    rows = ((f"{source}, row {i + 1}", dict(r)) for i, r in enumerate(dataset))
    return rows_to_prompts(rows, prompt_column, id_column, source)


def _load_local(path: Path, split: str):
    import datasets

    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"{path}: expected a JSON list of objects (one per prompt)")
        return data
    return datasets.load_dataset(LOCAL_SUFFIXES[path.suffix], data_files=str(path), split="train")


def _load_hub(name: str, split: str):
    import datasets

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as e:  # datasets raises many types for "not reachable / not found"
        raise InputError(
            f"could not load prompts {name!r} (split {split!r}) from the Hugging Face hub: {type(e).__name__}: {e}. "
            "Offline? Point data.prompts at a local .jsonl/.json/.csv/.parquet file or a saved dataset folder."
        ) from None


def split_prompts(prompts: list[dict[str, Any]], num_parts: int, selection_size: int, seed: int,
                  max_prompts: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Shuffle once by seed, hold out the selection set, cut the rest into equal disjoint parts."""
    rows = list(prompts)
    random.Random(seed).shuffle(rows)
    if max_prompts is not None:
        rows = rows[:max_prompts]
    if len(rows) < selection_size + num_parts:
        raise InputError(f"{len(rows)} prompts cannot fill a selection set of {selection_size} and {num_parts} "
                         "non-empty parts; lower data.selection_size or give more prompts")
    selection, rest = rows[:selection_size], rows[selection_size:]
    size = len(rest) // num_parts
    splits = {"selection": selection}
    for k in range(num_parts):
        splits[f"part_{k + 1}"] = rest[k * size: (k + 1) * size]
    return splits


def part_for(iteration: int, schedule: list[int]) -> str:
    """The part a PM or RM update of ``iteration`` (1-based) uses: the schedule is cycled."""
    return f"part_{schedule[(iteration - 1) % len(schedule)]}"


def prepare_splits(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The ``data`` stage: the environment's prompts, too-long ones dropped, cut into the run's splits."""

    def stage(ctx: StageContext):
        d = run.cfg.data
        prompts, fixed = run.env.prompts()
        lengths = run.engine.prompt_tokens(run.initial.policy, [p["prompt"] for p in prompts])
        kept = [p for p, n in zip(prompts, lengths, strict=True) if n <= d.max_prompt_tokens]
        if fixed is not None:  # the environment fixed its own selection set (the gold world does)
            splits = split_prompts(kept, d.num_parts, 0, ctx.seed, d.max_prompts)
            splits["selection"] = fixed["selection"]
        else:
            splits = split_prompts(kept, d.num_parts, d.selection_size, ctx.seed, d.max_prompts)
        if not splits["selection"]:
            raise InputError("the selection set is empty: every iteration's selection stage (and the last "
                             "checkpoint it keeps without select.enabled) answers it; set data.selection_size > 0")
        result = {}
        for name, rows in splits.items():
            write_jsonl(ctx.dir / f"{name}.jsonl", rows)
            result[name] = ctx.rel(ctx.dir / f"{name}.jsonl")
        metrics = {"prompts_loaded": len(prompts), "prompts_dropped_too_long": len(prompts) - len(kept),
                   **{f"size_{k}": len(v) for k, v in splits.items()}}
        return result, metrics

    return {k: read_jsonl(run.engine.rd.path(v)) for k, v in run.engine.stage(None, "data", stage).items()}
