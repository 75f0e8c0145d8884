"""An engine whose models are tables, for checking how the loop wires its steps together by hand.

Models are named, not loaded: the initial policy and RM are "pi0" and "r0"; a DPO candidate saved at
step s of iteration t is "pi{t}@{s}"; the RM trained in iteration t is "r{t}". A policy answers from
``answers[(name, prompt)]`` (cycled to the number of samples asked for, else ``answers[name]``, else
"{name}:{prompt}"); a reward model scores from ``scores[(name, text)]``, else ``scores[text]``, else 0,
and, like a real scorer, needs one prompt per response. Every call is logged (``sampled`` keeps each
generation's sampling settings), and the updates record what they were given and their seed, so a test
can assert which model judged what, which pairs the E-step built, what the M-step trained on and on
which random numbers. ``StubEnv(train, None)`` fixes no selection set: the data stage then cuts one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt.chat import prompt_text
from mt.config import MTConfig, load_config
from mt.engine import Engine, Models
from mt.loop import RunResult, run_loop
from mt.method import MUTUAL_TAUGHT, Method, Run
from mt.rundir import StageContext

# The knobs every stub run shares: no model is touched, so nothing here is about speed.
BASE = ["run.env=prompts", "models.policy=pi0", "models.reward=r0", "data.num_parts=1", "data.pm_parts=[1]",
        "data.rm_parts=[1]", "data.max_prompt_tokens=40", "sampling.k=3", "mstep.samples_per_prompt=4",
        "mstep.heldout_fraction=0", "mstep.include_estep_pairs=false", "select.tau=0.6", "run.iterations=1"]


def model_name(path: str) -> str:
    """The table name of a model path the loop hands over."""
    if m := re.search(r"iter_(\d+)/estep_train/candidates/checkpoint-(\d+)", path):
        return f"pi{m[1]}@{m[2]}"
    if m := re.search(r"iter_(\d+)/mstep_train(?:\.partial)?/model", path):  # also while its stage is running
        return f"r{m[1]}"
    if "judge_sft/model" in path:
        return "judge"
    return path


class StubEngine(Engine):
    def __init__(self, cfg: MTConfig, run_dir: Path, answers: dict, scores: dict, steps: tuple[int, ...] = (2, 4)):
        super().__init__(cfg, run_dir)
        self.answers, self.scores, self.steps = answers, scores, steps
        self.log: list[tuple] = []
        self.sampled: list[tuple[str, str, Any]] = []  # (model, what, Sampling) of each generate call
        self.dpo: list[dict[str, Any]] = []
        self.rm: list[dict[str, Any]] = []
        self.sft: list[dict[str, Any]] = []

    def answer(self, name: str, prompt: str, n: int) -> list[str]:
        texts = self.answers.get((name, prompt)) or self.answers.get(name) or [f"{name}:{prompt}"]
        return [texts[i % len(texts)] for i in range(n)]

    def generate(self, policy, rows, sampling, what):
        name = model_name(policy)
        self.log.append(("generate", name, tuple(prompt_text(r["prompt"]) for r in rows), sampling.n, what))
        self.sampled.append((name, what, sampling))
        outs = [[{"text": t, "num_tokens": len(t), "finished": True}
                 for t in self.answer(name, prompt_text(r["prompt"]), sampling.n)] for r in rows]
        tokens = sum(c["num_tokens"] for comps in outs for c in comps)
        return outs, {"completions": sampling.n * len(rows), "new_tokens": tokens, "unfinished": 0,
                      "tokens_per_s": None}

    def score(self, reward, prompts, responses, what):
        name = model_name(reward)
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
        self.log.append(("score", name, tuple(responses), what))
        return [float(self.scores.get((name, y), self.scores.get(y, 0.0))) for y in responses]

    def prompt_tokens(self, policy, prompts):
        self.log.append(("tokens", model_name(policy), len(prompts), "prompt lengths"))
        return [len(prompt_text(p)) for p in prompts]

    def train_dpo(self, policy, pairs, output_dir, seed, **kwargs):
        self.dpo.append({"policy": model_name(policy), "pairs": pairs, "seed": seed, **kwargs})
        out = []
        for step in self.steps:
            folder = Path(output_dir) / f"checkpoint-{step}"
            folder.mkdir(parents=True)
            out.append(folder)
        return out, {"dpo_steps": self.steps[-1]}

    def train_reward(self, init, pairs, output_dir, seed, **kwargs):
        self.rm.append({"init": model_name(init), "pairs": pairs, "seed": seed, **kwargs})
        folder = Path(output_dir) / "model"
        folder.mkdir(parents=True)
        return folder, {"rm_steps": 1}

    def train_sft(self, policy, examples, update, output_dir, seed, description="SFT"):
        self.sft.append({"policy": model_name(policy), "examples": examples})
        Path(output_dir).mkdir(parents=True)
        return {"sft_steps": 1}

    def calls(self, kind: str, what: str = "") -> list[tuple]:
        """Logged calls of one kind whose description contains ``what`` (e.g. "selection", "M-step")."""
        return [c for c in self.log if c[0] == kind and what in c[-1]]


@dataclass
class StubEnv:
    """Fixed prompts and selection set; a gold reward from a table when ``gold_table`` is given: like the gold
    world's, it reads the row (``gold_table[(row id, text)]``, else ``gold_table[text]``, else 0)."""

    train: list[str]
    selection: list[str] | None
    gold_table: dict[Any, float] | None = None
    name: str = "stub"
    evaluation: str = "none"
    evaluated: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def gold(self):
        if self.gold_table is None:
            return None
        table = self.gold_table
        return lambda row, text: table.get((row["id"], text), table.get(text, 0.0))

    def prompts(self):
        rows = [{"id": p, "prompt": [{"role": "user", "content": p}]} for p in self.train]
        if self.selection is None:
            return rows, None
        selection = [{"id": p, "prompt": [{"role": "user", "content": p}]} for p in self.selection]
        return rows, {"selection": selection}

    def initial_models(self) -> Models:
        return Models("pi0", "r0")

    def evaluate(self, ctx: StageContext, policy: str, reward: str, iteration: int) -> dict[str, Any]:
        self.evaluated.append((iteration, model_name(policy), model_name(reward)))
        return {"policy": model_name(policy), "reward": model_name(reward)}

    def heldout_prompts(self) -> list[dict]:
        return [{"id": f"h{i}", "prompt": [{"role": "user", "content": f"h{i}"}]} for i in range(2)]

    def preference_pairs(self) -> str | None:
        return None


def stub_run(tmp_path: Path, env: StubEnv, answers: dict, scores: dict, overrides=(), method: Method = MUTUAL_TAUGHT,
             steps: tuple[int, ...] = (2, 4), engine_class: type[StubEngine] = StubEngine,
             ) -> tuple[RunResult, StubEngine]:
    cfg = load_config(None, overrides=[*BASE, *overrides])
    engine = engine_class(cfg, tmp_path / "run", answers, scores, steps)
    try:
        return run_loop(Run(engine, env, env.initial_models()), method), engine
    finally:
        engine.close()
