"""Progress bars for long work (rich), and a quiet reporter for library use and tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback


class Reporter:
    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None

    def __enter__(self) -> Reporter:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if self._progress is None:
            yield lambda n=1: None
            return
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(task_id, n)
        finally:
            self._progress.remove_task(task_id)

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)


QUIET = Reporter(enabled=False)


class RichTrainerCallback(TrainerCallback):
    """Drives a rich bar from a transformers Trainer (whose own tqdm bar we switch off)."""

    def __init__(self, reporter: Reporter, description: str):
        self.reporter = reporter
        self.description = description
        self._ctx = None
        self._advance = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._ctx = self.reporter.task(self.description, state.max_steps)
        self._advance = self._ctx.__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        if self._advance:
            self._advance(1)

    def on_train_end(self, args, state, control, **kwargs):
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None


def quiet_trainer(trainer) -> None:
    """Metrics go to our files and bars, not as dicts printed to stdout."""
    trainer.remove_callback(PrinterCallback)
