"""Shared CLI plumbing: quiet libraries, one error line for user mistakes, rich tables."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def quiet_libraries() -> None:
    """Library chatter (per-shard bars, deprecation notes) would drown our own progress and tables."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's precompute bar; our own bars are rich
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="alpaca_eval")
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one red line and exit code 2, without a traceback.

    Every such error is a ``mt.errors.UserError`` (bad input, config, run directory, an unusable judge);
    a failed stage is exit code 1 (finished stages are kept). Anything else is a bug and keeps its traceback.
    """
    from mt.errors import UserError
    from mt.loop import StageError
    from mt.registry import UnknownName

    try:
        yield
    except (UserError, UnknownName, FileNotFoundError) as e:
        err_console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    except StageError as e:
        err_console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(1) from None
    except ImportError as e:
        err_console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished stages are kept; rerun the same command to resume.")
        raise typer.Exit(130) from None


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.1f}"
    if value is None:
        return "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], title: str | None = None, columns: Sequence[str] | None = None,
          rename: Callable[[str], str] | None = None) -> Table:
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        numeric = bool(rows) and isinstance(rows[0].get(c), (int, float))
        t.add_column(rename(c) if rename else c, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        t.add_row(*(fmt(r.get(c)) for c in columns))
    return t


def by_iteration(rows: Sequence[dict[str, Any]], title: str | None = None, label: str = "iteration") -> Table:
    """Metrics down, iterations across: per-iteration summaries have many keys and few iterations."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != label]
    t = Table(title=title, header_style="bold")
    t.add_column("metric", no_wrap=True)
    for r in rows:
        t.add_column(f"{label} {r.get(label)}", justify="right")
    for k in keys:
        t.add_row(k, *(fmt(r.get(k)) for r in rows))
    return t
