"""The plumbing every stage shares: running it in the run directory, sampling from a policy, scoring
with a reward model, and calling the two updates (in this process or under a launcher).

Stages never load a model themselves; they ask the engine. That keeps the E-step, selection and the
M-step readable as the paper's steps, lets one place decide how models are loaded and released, and
lets a test swap in an engine with fixed answers to check how the loop wires its steps together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chat import encode_prompt
from .config import MTConfig
from .errors import UserError, one_line
from .generate import Sampling, load_generator
from .modeling import load_causal_lm, load_tokenizer
from .progress import QUIET, Reporter
from .records import write_jsonl
from .reward import load_scorer
from .rundir import RunDir, StageContext

StageFn = Callable[[StageContext], tuple[dict[str, Any], dict[str, Any]]]


class StageError(RuntimeError):
    """A stage failed; finished stages are kept and a rerun resumes at this one.

    ``StageError.of`` keeps the cause's kind: a cause the user can fix (a bad file, model or judge: a
    ``UserError``) makes a ``UserStageError``, which the CLI prints as one line (exit code 2); any other
    cause is a bug, and the error keeps its traceback.
    """

    def __init__(self, message: str, label: str | None = None, cause: BaseException | None = None):
        super().__init__(message)
        self.label = label
        self.cause = cause

    @classmethod
    def of(cls, label: str, root: Path, cause: BaseException) -> StageError:
        user = isinstance(cause, UserError)
        reason = one_line(cause).rstrip(".") if user else f"{type(cause).__name__}: {cause}"
        message = (f"stage {label} failed: {reason}. Finished stages are kept in {root}; rerun the same command "
                   "to resume here.")
        return (UserStageError if user else StageError)(message, label, cause)


class UserStageError(StageError, UserError):
    """A stage failed for a reason the user can fix; the message names it and says that a rerun resumes here."""


def stage_seed(seed: int, iteration: int | None, name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{iteration}/{name}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 1)


@dataclass
class Models:
    """The pair of models the loop carries from one iteration to the next (folders or hub ids)."""

    policy: str
    reward: str


class Engine:
    def __init__(self, cfg: MTConfig, run_dir: str | Path, reporter: Reporter = QUIET,
                 command: list[str] | None = None, launcher: Sequence[str] | None = None):
        self.cfg = cfg
        self.reporter = reporter
        self.launcher = list(launcher) if launcher else None  # how the updates run, not what they compute
        self.rd = RunDir.open(run_dir, cfg.to_dict(), cfg.run.seed, command, MTConfig().to_dict())

    def close(self) -> None:
        self.rd.close()

    # ------------------------------------------------------------------ stages
    def stage(self, iteration: int | None, name: str, fn: StageFn) -> dict[str, Any]:
        """Run ``fn`` as a resumable stage (or read its result back) and return its result."""
        label = name if iteration is None else f"iter_{iteration}/{name}"
        try:
            result, ran = self.rd.run_stage(iteration, name, fn, stage_seed(self.cfg.run.seed, iteration, name))
        except (KeyboardInterrupt, StageError):
            raise
        except Exception as e:
            raise StageError.of(label, self.rd.root, e) from e
        if not ran:
            self.reporter.log(f"[dim]{label}: done earlier, reusing it[/dim]")
        return result

    def abs(self, path: str) -> str:
        """Run-relative paths become absolute; hub ids and absolute paths pass through."""
        candidate = self.rd.root / path
        return str(candidate) if not Path(path).is_absolute() and candidate.exists() else path

    # ------------------------------------------------------------------ models at work
    def sampling(self, n: int, seed: int, temperature: float | None = None) -> Sampling:
        s = self.cfg.sampling
        return Sampling(n=n, temperature=s.temperature if temperature is None else temperature, top_p=s.top_p,
                        max_new_tokens=s.max_new_tokens, seed=seed)

    def generate(self, policy: str, rows: list[dict], sampling: Sampling, what: str) -> tuple[list[list[dict]], dict]:
        """``sampling.n`` completions (dicts with text, num_tokens, finished) per row's prompt, and counts."""
        s, m = self.cfg.sampling, self.cfg.models
        gen = load_generator(s.backend, policy, dtype=m.dtype, batch_size=s.batch_size,
                             tensor_parallel_size=s.tensor_parallel_size,
                             gpu_memory_utilization=s.gpu_memory_utilization, seed=sampling.seed,
                             attn_implementation=m.attn_implementation, trust_remote_code=m.trust_remote_code)
        try:
            with self.reporter.task(what, len(rows)) as advance:
                out = gen.generate([r["prompt"] for r in rows], sampling, advance)
        finally:
            gen.close()
        st = gen.stats
        stats = {"completions": st.completions, "new_tokens": st.new_tokens, "unfinished": st.unfinished,
                 "tokens_per_s": round(st.new_tokens / st.seconds, 1) if st.seconds else None}
        return [[c.to_dict() for c in comps] for comps in out], stats

    def prompt_tokens(self, policy: str, prompts: list) -> list[int]:
        """Each prompt's length in ``policy``'s tokens, chat template included (as generation sees it)."""
        tokenizer = load_tokenizer(policy, self.cfg.models.trust_remote_code)
        return [len(encode_prompt(tokenizer, p)) for p in prompts]

    def score(self, reward: str, prompts: list, responses: list[str], what: str) -> list[float]:
        m = self.cfg.models
        scorer = load_scorer(reward, dtype=m.dtype, batch_size=self.cfg.sampling.batch_size,
                             attn_implementation=m.attn_implementation, trust_remote_code=m.trust_remote_code)
        try:
            with self.reporter.task(what, len(responses)) as advance:
                return scorer.score(prompts, responses, advance)
        finally:
            scorer.close()

    def train_dpo(self, policy: str, pairs: list[dict], output_dir: Path, seed: int,
                  **kwargs: Any) -> tuple[list[Path], dict[str, Any]]:
        """DPO from ``policy`` (``mt.updates.train_dpo``); returns the candidate checkpoints and metrics."""
        from .updates import train_dpo

        return train_dpo(policy, pairs, self.cfg.estep, self.cfg.models, output_dir, seed, reporter=self.reporter,
                         launcher=self.launcher, **kwargs)

    def train_reward(self, init: str, pairs: list[dict], output_dir: Path, seed: int,
                     **kwargs: Any) -> tuple[Path, dict[str, Any]]:
        """Bradley-Terry training from ``init`` (``mt.updates.train_reward_model``)."""
        from .updates import train_reward_model

        return train_reward_model(init, pairs, self.cfg.mstep, self.cfg.models, output_dir, seed,
                                  reporter=self.reporter, launcher=self.launcher, **kwargs)

    def train_sft(self, policy: str, examples: list[dict], update, output_dir: Path, seed: int,
                  description: str = "SFT") -> dict[str, Any]:
        """Supervised fine-tuning of ``policy`` on prompt/completion rows (``mt.updates.train_sft``)."""
        from .updates import train_sft

        m = self.cfg.models
        model = load_causal_lm(policy, m.dtype, m.attn_implementation, m.trust_remote_code)
        return train_sft(model, load_tokenizer(policy, m.trust_remote_code), examples, update, output_dir, seed,
                         self.reporter, description)

    # ------------------------------------------------------------------ a common stage
    def sample_stage(self, t: int, name: str, policy: str, prompts: list[dict], n: int, what: str,
                     temperature: float | None = None) -> str:
        """A stage that samples ``n`` responses per prompt; returns the run-relative path of its rows."""

        def run(ctx: StageContext):
            outs, stats = self.generate(policy, prompts, self.sampling(n, ctx.seed, temperature), what)
            rows = [{**p, "responses": o} for p, o in zip(prompts, outs, strict=True)]
            write_jsonl(ctx.dir / "samples.jsonl", rows)
            return {"samples": ctx.rel(ctx.dir / "samples.jsonl")}, {"prompts": len(rows), **stats}

        return self.stage(t, name, run)["samples"]

    def score_rows(self, reward: str, rows: list[dict], what: str) -> list[list[float]]:
        """Scores of every response of every row (``rows[i]["responses"]``), nested like the rows."""
        flat = [(r["prompt"], resp["text"]) for r in rows for resp in r["responses"]]
        scores = iter(self.score(reward, [p for p, _ in flat], [y for _, y in flat], what))
        return [[next(scores) for _ in r["responses"]] for r in rows]
