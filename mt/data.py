"""Prompt sources, the disjoint splits of a run, and their rotation between PM and RM updates.

A prompt row is ``{"id": str, "prompt": [chat messages], **extra}``; extra fields (e.g. the gold
world's task and answer) travel with the row untouched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chat import as_messages
from .errors import one_line
from .records import InputError, iter_jsonl, read_bytes, read_json, read_jsonl, read_text, write_jsonl

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
    """Read prompts from a local file (each bad row named by file and line or row) or a hub dataset id."""
    path = Path(source).expanduser()
    if path.suffix in LOCAL_SUFFIXES or path.is_dir() or path.exists():
        rows = local_rows(path, hub_split)
    else:
        rows = ((f"{source}, row {i + 1}", dict(r)) for i, r in enumerate(_load_hub(source, hub_split)))
    return rows_to_prompts(rows, prompt_column, id_column, source)


def local_rows(path: Path, split: str = "train") -> Iterable[tuple[str, dict[str, Any]]]:
    """(where, row) of a local .jsonl/.json/.csv/.parquet file or a saved dataset folder; a file that cannot be
    read is one InputError naming it (and the line, where there is one)."""
    if path.is_dir():
        return ((f"{path}, row {i + 1}", dict(r)) for i, r in enumerate(_load_saved(path, split)))
    if path.suffix == ".jsonl":
        return ((f"{path}, line {n}", row) for n, row in iter_jsonl(path))
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"{path}: expected a JSON list of objects (one per prompt)")
        return ((f"{path}, row {i + 1}", r) for i, r in enumerate(data))
    if path.suffix == ".csv":
        return _csv_rows(path)
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    raise InputError(f"{path}: expected a {', '.join(LOCAL_SUFFIXES)} file or a saved dataset folder")


def _csv_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames  # read now, so that line numbers count from the first row
    except csv.Error as e:
        raise InputError(f"{path}, line 1: not a valid CSV header ({e})") from None
    if header is None:
        raise InputError(f"{path}: empty file, expected a CSV header and rows")
    rows = []
    while True:
        start = reader.line_num + 1  # where the next row begins
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise InputError(f"{path}, line {start}: not valid CSV ({e})") from None
        where = f"{path}, line {start}"
        extra = row.pop(None, None)  # DictReader's place for fields beyond the header
        if extra is not None or any(v is None for v in row.values()):
            given = sum(v is not None for v in row.values()) + len(extra or [])
            raise InputError(f"{where}: {given} fields where the header has {len(header)}")
        rows.append((where, row))
    return rows


def _parquet_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    read_bytes(path)  # missing, a folder, unreadable: one error naming it
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises its own types for a truncated or non-Parquet file
        raise InputError(f"{path}: not a readable Parquet file ({type(e).__name__}: {one_line(e)[:200]})") from None
    return [(f"{path}, row {i + 1}", row) for i, row in enumerate(rows)]


def _load_saved(path: Path, split: str):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise InputError(f"{path}: not a dataset saved with save_to_disk ({one_line(e)[:200]}); give a "
                         f"{', '.join(LOCAL_SUFFIXES)} file instead") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InputError(f"{path}: no split {split!r} (splits: {', '.join(loaded)}); set data.hub_split")
        return loaded[split]
    return loaded


def _load_hub(name: str, split: str):
    import datasets

    from .checks import check_hub

    check_hub(f"prompts {name!r} (data.prompts)", "point data.prompts at a local .jsonl/.json/.csv/.parquet file")
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
