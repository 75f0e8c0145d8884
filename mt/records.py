"""JSON-lines files: atomic writes and reads whose errors name the file and the line."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError, ModelOutputError

__all__ = ["InputError", "atomic_write_text", "check_finite", "dumps", "iter_jsonl", "read_json", "read_jsonl",
           "read_text", "write_json", "write_jsonl"]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write to a temporary file beside ``path`` and rename it over: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, ensure_ascii=False, allow_nan=False)


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, default=_default, indent=2, ensure_ascii=False, allow_nan=False))


NEWLINE = b"\n"


def unreadable(error: OSError, label: str) -> InputError:
    """An OSError of opening or reading a file, as one InputError naming it and what to do."""
    if isinstance(error, FileNotFoundError):
        return InputError(f"{label}: file not found")
    if isinstance(error, IsADirectoryError):
        return InputError(f"{label}: a folder, expected a file")
    if isinstance(error, NotADirectoryError):
        return InputError(f"{label}: a part of this path is a file, not a folder")
    if isinstance(error, PermissionError):
        return InputError(f"{label}: permission denied; make it readable")
    return InputError(f"{label}: cannot be read ({error.strerror or error})")


def read_bytes(path: str | Path, what: str | None = None) -> bytes:
    """A file's bytes, or one InputError naming it: missing, a folder, unreadable."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise unreadable(e, f"{what} {path}" if what else str(path)) from None


def decode(data: bytes, label: str, lines: bool = True) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or InputError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        where = f" on line {data.count(NEWLINE, 0, e.start) + 1}" if lines else ""
        kind = "a binary file, not text" if b"\0" in data[:8192] else "not UTF-8 text"
        raise InputError(f"{label}: {kind} (byte 0x{data[e.start]:02x}{where} is not UTF-8); "
                         "save it as UTF-8 text") from None


def read_text(path: str | Path, what: str | None = None) -> str:
    """A file's UTF-8 text, or one InputError naming it: missing, a folder, unreadable, binary, not UTF-8."""
    label = f"{what} {path}" if what else str(path)
    return decode(read_bytes(path, what), label)


def read_json(path: str | Path, what: str | None = None) -> Any:
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    text = read_text(path, what)
    if not text.strip():
        raise InputError(f"{label}: empty file, expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{label}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row); a missing file, a folder, a line that is not UTF-8 or not a JSON object
    raises InputError naming file and line. Blank lines are skipped."""
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as e:
        raise unreadable(e, str(path)) from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            line = decode(raw, f"{path}, line {lineno}", lines=False).lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]


def check_finite(values: Iterable[float], what: str) -> None:
    """Raise on NaN/inf so a broken model stops the run at the stage that produced it."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise ModelOutputError(f"{what}: value {i} is {v}; the model produced a non-finite number. Its weights "
                                   "are broken (a diverged or corrupt checkpoint?): give another model")
