"""The run directory is the state of a run.

Each stage builds its outputs in ``<stage>.partial/`` and, once complete, writes ``DONE.json``
there and renames the folder to ``<stage>/``. Rename is atomic, so a stage folder that exists is
finished; a ``.partial`` folder is an interrupted attempt, removed and redone on the next start.
``metrics.jsonl`` at the root is derived from the DONE files, never appended to, so it cannot
disagree with them.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import RunDirError
from .records import atomic_write_text, dumps, read_json, write_json, write_jsonl

DONE = "DONE.json"
SUMMARY = "summary.json"  # written last: a run directory that holds it is finished
ENVIRONMENT = "environment.json"  # what the run's numbers depend on beyond its config (a world's build)
# Keys a rerun may change without invalidating finished stages (extending a run is a normal thing to do).
MUTABLE_KEYS = {"run.iterations"}
PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "alpaca-eval", "vllm", "mt-repro")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """The settings on which ``old`` and ``new`` differ. A key ``old`` lacks (a field added to the config since
    ``old`` was saved) is no difference where ``new`` holds that field's default from ``defaults``: a new field's
    default is what the code did before the field existed, so old runs stay resumable after an upgrade."""
    a, b = _flatten(old), _flatten(new)
    added = _flatten(defaults or {})
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in MUTABLE_KEYS
                  and not (k not in a and k in added and b.get(k) == added[k]))


@dataclass
class StageContext:
    """What a stage function gets: its scratch folder and a way to name paths as they will be."""

    rundir: RunDir
    iteration: int | None
    name: str
    dir: Path  # the .partial folder the stage writes into
    seed: int

    @property
    def final_dir(self) -> Path:
        return self.rundir.stage_dir(self.iteration, self.name)

    def rel(self, path: str | Path) -> str:
        """A path inside this stage, as it will read from the run root once the stage is done."""
        path = Path(path).resolve()
        inner = path.relative_to(self.dir.resolve())
        return str((self.final_dir / inner).relative_to(self.rundir.root))


def done_files(root: Path) -> Iterator[Path]:
    """The DONE.json of every finished stage (one left inside a .partial folder is not finished)."""
    return (p for p in root.glob(f"**/{DONE}") if ".partial" not in str(p))


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock_fh = None

    # ----------------------------------------------------------- opening
    @classmethod
    def open(cls, root: str | Path, config: dict[str, Any], seed: int, command: list[str] | None = None,
             defaults: dict[str, Any] | None = None) -> RunDir:
        rd = cls(root)
        cls.check(rd.root, config, defaults)
        try:
            rd.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"run directory {rd.root} cannot be made ({e.strerror or e}); pass another "
                              "--run-dir") from None
        rd._lock()
        try:
            cls.check(rd.root, config, defaults)  # again, now that no other process can change it
            write_json(rd.root / "config.json", config)
            session = {
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": command or sys.argv,
                "seed": seed,
                "git_commit": git_commit(),
                "platform": platform.platform(),
                "versions": versions(),
            }
            env_path = rd.root / "env.json"
            sessions = read_json(env_path)["sessions"] if env_path.exists() else []
            write_json(env_path, {"sessions": [*sessions, session]})
        except BaseException:
            rd.close()  # a refused or failed open must not keep the directory locked
            raise
        return rd

    @staticmethod
    def check(root: str | Path, config: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
        """What opening ``root`` for a run of ``config`` refuses, found without writing anything: a file where
        the folder belongs, a folder that is not a run directory, or finished stages made with another config
        (``defaults``: the config's field defaults, see ``config_differences``).

        A run directory whose stages are all unfinished holds nothing to protect: a new config replaces its own.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RunDirError(f"run directory {root} is a file, not a folder; pass another --run-dir")
        existing = next((q for q in root.parents if q.exists()), None)
        if existing is not None and not existing.is_dir():
            raise RunDirError(f"run directory {root}: {existing} is a file, not a folder; pass another --run-dir")
        if not root.is_dir():
            if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
                raise RunDirError(f"run directory {root}: {existing} is not writable; pass another --run-dir")
            return
        saved = root / "config.json"
        if not saved.exists():
            if any(not c.name.startswith(".") for c in root.iterdir()):
                raise RunDirError(f"{root} holds files but no config.json: it is not an mt-repro run directory. "
                                  "Pass another --run-dir (a new or empty folder)")
            return
        if not any(done_files(root)):
            return
        diffs = config_differences(read_json(saved), config, defaults)
        if diffs:
            raise RunDirError(
                f"{root} holds a run made with a different config ({', '.join(diffs[:8])}"
                f"{' ...' if len(diffs) > 8 else ''}). Finished work is never overwritten: pass another "
                "--run-dir, or rerun with the settings saved in its config.json."
            )

    def bind_environment(self, identity: dict[str, Any]) -> None:
        """Record ``identity`` (what the environment's numbers depend on beyond the config, e.g. the build of a
        world), or refuse to go on where finished stages were made in an environment with another one.

        The config cannot say this: a world rebuilt by newer code or other packages has the same settings. A run
        made before this record existed is checked on the keys its evaluations recorded (a world's fingerprint)."""
        path = self.root / ENVIRONMENT
        if any(done_files(self.root)):
            if path.exists():
                saved, now = read_json(path), identity
            else:
                evaluations = [r["metrics"] for r in self.records() if r["stage"] == "evaluate"]
                recorded = {k: [m[k] for m in evaluations if k in m] for k in identity}
                # A key's recorded value that differs from now's, if any evaluation has one.
                saved = {k: next((v for v in vs if v != identity[k]), vs[0]) for k, vs in recorded.items() if vs}
                now = {k: v for k, v in identity.items() if k in saved}
            diffs = config_differences(saved, now)
            if diffs:
                shown = ", ".join(f"{k}: {_flatten(saved).get(k)} then, {_flatten(now).get(k)} now" for k in diffs[:4])
                raise RunDirError(
                    f"{self.root} was run in another build of its environment ({shown}). Finished work is never "
                    "mixed with another environment's: pass another --run-dir, or move this one away.")
        write_json(path, identity)

    def _lock(self) -> None:
        try:
            self._lock_fh = open(self.root / ".lock", "w")  # noqa: SIM115 - held for the process lifetime
        except OSError as e:
            raise RunDirError(f"run directory {self.root}: cannot write its lock file ({e.strerror or e}); "
                              "pass another --run-dir") from None
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise RunDirError(f"{self.root} is in use by another mt-repro process; wait for it or pick another "
                              "--run-dir") from None

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    # ----------------------------------------------------------- paths
    def stage_dir(self, iteration: int | None, name: str) -> Path:
        return self.root / name if iteration is None else self.root / f"iter_{iteration}" / name

    def path(self, rel: str) -> Path:
        return self.root / rel

    def is_done(self, iteration: int | None, name: str) -> bool:
        return (self.stage_dir(iteration, name) / DONE).exists()

    def done_record(self, iteration: int | None, name: str) -> dict[str, Any]:
        return read_json(self.stage_dir(iteration, name) / DONE)

    # ----------------------------------------------------------- stages
    def run_stage(
        self,
        iteration: int | None,
        name: str,
        fn: Callable[[StageContext], tuple[dict[str, Any], dict[str, Any]]],
        seed: int,
    ) -> tuple[dict[str, Any], bool]:
        """Run ``fn`` unless the stage is done; returns (result, ran_now).

        ``fn`` returns (result, metrics): result holds what later stages need (paths relative to
        the run root via ``ctx.rel``), metrics what a reader wants to see.
        """
        final = self.stage_dir(iteration, name)
        if (final / DONE).exists():
            return read_json(final / DONE)["result"], False
        if final.exists():
            raise RunDirError(f"{final} exists without {DONE}: it was not written by mt-repro; move it away")
        partial = final.with_name(final.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        ctx = StageContext(self, iteration, name, partial, seed)
        start = time.perf_counter()
        result, metrics = fn(ctx)
        record = {
            "stage": name,
            "iteration": iteration,
            "seed": seed,
            "result": result,
            "metrics": metrics,
            "wall_time_s": round(time.perf_counter() - start, 3),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "finished_unix": time.time(),
        }
        write_json(partial / DONE, record)
        os.replace(partial, final)
        self._write_metrics()
        return result, True

    def records(self) -> list[dict[str, Any]]:
        """Every finished stage's record, in the order the stages finished."""
        found = [read_json(p) for p in done_files(self.root)]
        return sorted(found, key=lambda r: r["finished_unix"])

    def _write_metrics(self) -> None:
        rows = [
            {"iteration": r["iteration"], "stage": r["stage"], "wall_time_s": r["wall_time_s"], **r["metrics"]}
            for r in self.records()
        ]
        write_jsonl(self.root / "metrics.jsonl", rows)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.root / SUMMARY, dumps(summary))
