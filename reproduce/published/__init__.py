"""Published numbers with their sources: the CSV files beside this module, shipped as package data.

Each row names its source (see README.md here); ``load_published`` reads one table and refuses a
number without a source.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mt.records import InputError

PUBLISHED_DIR = Path(__file__).resolve().parent
KEY_COLUMN = {"table1": "method", "table2": "model", "table3": "method", "related": "method"}


def load_published(table: str, folder: Path = PUBLISHED_DIR) -> list[dict[str, Any]]:
    """Rows with a ``key`` (method or model), numeric columns as floats (None when empty) and a ``source``."""
    path = folder / f"{table}.csv"
    if not path.exists():
        raise InputError(f"{path}: no published numbers for {table}")
    rows = []
    with path.open(newline="") as fh:
        for n, raw in enumerate(csv.DictReader(fh), start=2):
            if not raw.get("source"):
                raise InputError(f"{path}, line {n}: every published number needs a source")
            row: dict[str, Any] = {"key": raw[KEY_COLUMN[table]], "label": raw["label"], "source": raw["source"]}
            for k, v in raw.items():
                if k in (KEY_COLUMN[table], "label", "source"):
                    continue
                try:
                    row[k] = float(v) if v else None
                except ValueError:
                    raise InputError(f"{path}, line {n}: column {k!r} should be a number, got {v!r}") from None
            rows.append(row)
    return rows
