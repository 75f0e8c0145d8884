"""The one base of every failure a user can fix: a bad file, key, value, path, or an unusable judge.

The CLI prints such an error as one line (what was wrong, where, what to do next) and exits with
code 2; any other exception is a bug and keeps its traceback. Subclasses keep a second, older base
(``ValueError``, ``RuntimeError``) so code that caught those still does.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can fix; the message names the culprit (file, line, key) and the next step."""
