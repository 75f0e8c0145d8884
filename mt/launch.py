"""Training stages under a launcher (``accelerate launch``, ``torchrun``): one process tree per update.

The loop itself stays one process: it samples, scores and selects, which vLLM parallelises on its
own. Only the two updates need every GPU in lock-step, so ``run_launched`` writes the update's
arguments to a file, runs ``LAUNCHER... -m mt.launch FILE`` and waits; every rank calls the same
training function (TRL and accelerate do the distribution, DeepSpeed included) and rank 0 writes
the result back. With no launcher the function is simply called in this process.

    mt-repro train --preset paper \\
        --launcher "accelerate launch --config_file reproduce/accelerate/multi_gpu_zero3.yaml"
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import InputError

REQUEST = "launch_request.pkl"
RESULT = "launch_result.pkl"


def run_launched(fn_path: str, launcher: Sequence[str], workdir: Path, **kwargs: Any) -> Any:
    """Call ``module:function`` with ``kwargs`` on every rank of ``launcher``; return rank 0's result."""
    workdir.mkdir(parents=True, exist_ok=True)
    request, result = workdir / REQUEST, workdir / RESULT
    try:
        payload = pickle.dumps((fn_path, kwargs))
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise InputError(f"this update cannot run under --launcher: its arguments do not pickle ({e}). A custom "
                         "trainer class must be importable by name (a module-level class or a functools.partial "
                         "of one); run without --launcher instead") from e
    request.write_bytes(payload)
    result.unlink(missing_ok=True)
    command = [*launcher, "-m", "mt.launch", str(request)]
    done = subprocess.run(command, check=False)
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"the launched update exited with status {done.returncode}: {' '.join(command)} "
                           "(its output is above; the stage is not marked done, so a rerun retries it)")
    out = pickle.loads(result.read_bytes())
    request.unlink()
    result.unlink()
    return out


def _resolve(fn_path: str):
    module, _, name = fn_path.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> None:
    """The worker: every rank runs the update; only rank 0 writes the result (atomically)."""
    (request,) = argv if argv is not None else sys.argv[1:]
    path = Path(request)
    fn_path, kwargs = pickle.loads(path.read_bytes())
    out = _resolve(fn_path)(**kwargs)
    if int(os.environ.get("RANK", "0")) == 0:
        tmp = path.with_name(RESULT + ".tmp")
        tmp.write_bytes(pickle.dumps(out))
        os.replace(tmp, path.with_name(RESULT))


if __name__ == "__main__":
    main()
