"""Rows SEAM reads: a prompt (text or chat messages) and its gold answer y*, checked once at the door."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..chat import as_messages
from ..records import InputError, iter_jsonl


def _prompt_problem(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return None if prompt.strip() else "an empty prompt"
    if isinstance(prompt, list) and prompt and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in prompt):
        return None
    return f"a {type(prompt).__name__}" if not isinstance(prompt, list) else "a malformed message list"


def check_row(row: dict[str, Any], where: str, prompt_column: str = "prompt", answer_column: str = "answer",
              id_column: str | None = "id", index: int = 0) -> dict[str, Any]:
    """The row as {"id", "prompt": messages, "answer", ["family"]}, or InputError saying what is wrong."""
    expected = (f"expected a prompt (text or a list of {{role, content}} messages) in {prompt_column!r} and a "
                f"non-empty gold answer string in {answer_column!r}")
    for column in (prompt_column, answer_column):
        if column not in row:
            raise InputError(f"{where}: no column {column!r} (columns: {', '.join(sorted(row)) or 'none'}); {expected}")
    problem = _prompt_problem(row[prompt_column])
    if problem:
        raise InputError(f"{where}: column {prompt_column!r} holds {problem}; {expected}")
    answer = row[answer_column]
    if not isinstance(answer, str) or not answer.strip():
        raise InputError(f"{where}: column {answer_column!r} holds {answer!r}; {expected}")
    out = {"id": str(row[id_column]) if id_column and row.get(id_column) is not None else str(index),
           "prompt": as_messages(row[prompt_column]), "answer": answer}
    if isinstance(row.get("family"), str):
        out["family"] = row["family"]
    return out


def check_rows(rows: Sequence[dict[str, Any]], where: str = "rows") -> list[dict[str, Any]]:
    return [check_row(r, f"{where}, row {i}", index=i) for i, r in enumerate(rows)]


def load_rows(path: str | Path, prompt_column: str = "prompt", answer_column: str = "answer",
              id_column: str | None = "id", limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for lineno, row in iter_jsonl(path):
        if limit is not None and len(rows) >= limit:
            break
        rows.append(check_row(row, f"{path}, line {lineno}", prompt_column, answer_column, id_column, lineno - 1))
    if not rows:
        raise InputError(f"{path}: no rows; expected JSON lines with {prompt_column!r} and {answer_column!r}")
    return rows
