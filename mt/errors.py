"""The errors a user can fix: a bad file, key, value, path or model, an unusable judge, a missing package.

Every one is a ``UserError``. The CLI prints it as one line on stderr (what was wrong, which file, line
or key, what to do next) and exits with code 2; ``--debug`` (or ``MT_REPRO_DEBUG=1``) adds its
traceback. Any other exception is a bug and keeps its traceback (exit code 1). Subclasses keep a
second, older base (``ValueError``, ``RuntimeError``, ...) so code that caught those still does.

The modules that raise them most re-export them: ``mt.records.InputError``, ``mt.options.ConfigError``,
``mt.rundir.RunDirError``; a judge's failure is ``bench.judges.JudgeError``.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can fix; the message names the culprit (file, line, key) and the next step."""


class InputError(UserError, ValueError):
    """Bad user input; the message says which file, which row and what was expected."""


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names the key and what was expected."""


class RunDirError(UserError, RuntimeError):
    """The run directory cannot be used as asked; the message says what to do instead."""


class ModelOutputError(UserError, FloatingPointError):
    """A model produced numbers that cannot be used (NaN or infinite rewards, log-probabilities)."""


class MissingPackageError(UserError, ImportError):
    """An optional package that the chosen setting needs is not installed; the message says how to install it."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (a library's message may span several)."""
    return " ".join(str(error).split()) or type(error).__name__
