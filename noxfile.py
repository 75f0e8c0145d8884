"""Sessions for mt-repro. Each builds its own environment the way the README installs the project.

    nox -s tests        # the test suite (CI runs this)
    nox -s demo         # the main job on the tiny preset (all methods, one seed, the three tables)
    nox -s table1-tiny  # a reduced Table 1
    nox -s lint smoke   # ruff; a quick end-to-end run
    nox -s perf         # overhead and speed ratios, written to results/perf/
    nox -s mutants      # mutation testing of the core against the fast tests (not in CI; results/mutants.md)
    nox -s wheel        # `pip install .` (not editable), then the commands from an empty folder
    nox -s dev          # a .venv in the repo root with mt-repro installed, for a shell
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

# A CPU build of torch lies on disk here; without the pin first, pip would fetch several GB of CUDA wheels.
TORCH = "torch==2.13.0"


# The package set the gold world's numbers were measured with; a world built with other versions differs.
CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, extras: str = "dev") -> None:
    session.install(*CONSTRAINTS, TORCH)
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")
    session.run("python", "-c", "import torch, transformers, trl; print('torch', torch.__version__, "
                "'| transformers', transformers.__version__, '| trl', trl.__version__)")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (offline, CPU). Extra arguments go to pytest, e.g. nox -s tests -- -m 'not slow'."""
    install(session)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the tiny preset: builds the gold world, runs every method of Table 1 once (one seed),
    and writes the three tables and the curves under results/tiny-demo."""
    install(session)
    session.run("mt-repro", "tables", "--preset", "tiny", "--seeds", "1", "--out", "results/tiny-demo",
                *session.posargs)


@nox.session(name="table1-tiny")
def table1_tiny(session: nox.Session) -> None:
    """A reduced Table 1 (one seed, 150 prompts per part) end to end, for CI-sized checks."""
    install(session)
    session.run("mt-repro", "table1", "--preset", "tiny", "--seeds", "1", "--set", "data.max_prompts=450",
                "--runs", "runs/table1-tiny", "--out", "results/table1-tiny", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """A quick end-to-end run on a slice of the tiny preset."""
    install(session)
    session.run("mt-repro", "train", "--preset", "tiny", "--run-dir", "runs/smoke", "--set", "data.max_prompts=300",
                "--set", "mstep.samples_per_prompt=1", *session.posargs)


@nox.session
def perf(session: nox.Session) -> None:
    """What our code adds to TRL's trainers, and batched vs one-at-a-time sampling and scoring (ratios)."""
    install(session)
    session.run("python", "-m", "reproduce.perf", *session.posargs)


MUTMUT = "mutmut==3.8.1"


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing of the algorithm's core with mutmut, against the fast tests only (no GPU, no network).

    What is mutated and which tests run is [tool.mutmut] in pyproject.toml. Each run starts afresh (mutmut keeps a
    survivor's verdict until its function changes, so an old mutants/ folder would not see new tests); extra
    arguments go to `mutmut run`, e.g. nox -s mutants -- "mt.filter.*". Ends with killed / total per module.
    Survivors: `mutmut results`, `mutmut show NAME` (from the venv in .nox/mutants); the judged list is in
    results/mutants.md. The mt modules took about 20 minutes on one shared core in fork mode (forkserver, set in
    pyproject for torch, is several times slower); bench/metrics much longer.
    """
    install(session)
    session.install(MUTMUT)
    shutil.rmtree("mutants", ignore_errors=True)
    session.run("mutmut", "run", *session.posargs)
    results = session.run("mutmut", "results", "--all", "true", silent=True) or ""
    for line in mutation_score(results):
        session.log(line)


def mutation_score(results: str) -> list[str]:
    """Per module and in all: killed / total, from `mutmut results --all true` lines ("  mt.x.x_f__mutmut_1: killed").

    A timeout counts as killed: the mutant made a test run far past its clean time (e.g. asking for ``seed``
    samples), which a test run notices."""
    by_module: dict[str, Counter] = {}
    for line in results.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            by_module.setdefault(name.split("__mutmut_")[0].rsplit(".", 1)[0], Counter())[status] += 1
    total = sum(by_module.values(), Counter())
    lines = []
    for module, counts in [*sorted(by_module.items()), ("all", total)]:
        n = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]
        others = ", ".join(f"{status} {k}" for status, k in sorted(counts.items()) if status != "killed")
        lines.append(f"{module:24} killed {killed} / {n} = {killed / max(n, 1):.1%}{f' ({others})' if others else ''}")
    return lines


@nox.session
def wheel(session: nox.Session) -> None:
    """Install the project as a user would (`pip install .`, not editable) and run it from an empty folder:
    the paper plan and a RewardBench run must find their presets, recipes and published numbers."""
    session.install(*CONSTRAINTS, TORCH)
    session.install(*CONSTRAINTS, ".")
    work = session.create_tmp()
    session.chdir(work)
    session.run("python", "-c", "from mt.tiny import make_tiny_models; make_tiny_models('models')")
    rows = [{"prompt": f"question {i}", "chosen": "a good answer", "rejected": "bad", "subset": "alpacaeval-easy"}
            for i in range(4)]
    with open("rb.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    wide = {"COLUMNS": "250"}  # rich wraps its tables to the terminal; a captured run gets 80 columns
    plan = session.run("mt-repro", "table1", "--preset", "paper", "--dry-run", silent=True, env=wide)
    bench = session.run("mt-repro", "bench", "reward-bench", "--model", "models/reward", "--data", "rb.jsonl",
                        "--out", "rb-out", "--quiet", silent=True, env=wide)
    for text, wanted in ((plan, "mutual-taught"), (plan, "alpaca-eval"), (bench, "S1")):
        if wanted not in text:
            session.error(f"{wanted!r} missing from the output:\n{text}")
    session.log("installed from a wheel, both commands ran from an empty folder and showed published rows")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the code and tests."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "mt", "bench", "reproduce", "tests", "noxfile.py")


@nox.session(venv_backend="none")
def dev(session: nox.Session) -> None:
    """Create .venv in the repo root with mt-repro installed in editable mode (activate it for a shell)."""
    session.run("python3", "-m", "venv", ".venv", external=True)
    session.run(".venv/bin/python", "-m", "pip", "install", "-q", TORCH, external=True)
    session.run(".venv/bin/python", "-m", "pip", "install", "-q", "-e", ".[dev]", external=True)
    session.log("ready: source .venv/bin/activate && mt-repro --help")
