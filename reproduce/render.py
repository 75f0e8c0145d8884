"""Writing a table as Markdown, LaTeX and CSV (pandas does the CSV and LaTeX)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mt.records import atomic_write_text


def to_markdown(df: pd.DataFrame) -> str:
    # pandas' own to_markdown needs the tabulate package; a pipe table is three lines of code.
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_table(df: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    md = stem.with_suffix(".md")
    atomic_write_text(md, f"{caption}\n\n{to_markdown(df)}")
    tex = stem.with_suffix(".tex")
    latex = df.style.hide(axis="index").to_latex(caption=caption.replace("_", r"\_"), hrules=True)
    atomic_write_text(tex, latex.replace("%", r"\%").replace("±", r"$\pm$").replace("_0", r"\_0"))
    csv = stem.with_suffix(".csv")
    atomic_write_text(csv, df.to_csv(index=False))
    return [md, tex, csv]
