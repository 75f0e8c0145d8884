"""The Mutual-Taught EM loop over a run directory, in the paper's order.

    for t = 1..T:
        E-step   sample K responses from pi_{t-1} on the PM part, score them with r_{t-1},
                 build pairs, DPO from pi_{t-1}                     -> candidate checkpoints
        select   each candidate vs pi_{t-1} on the selection set, judged by r_{t-1};
                 keep the best, or stop when it wins less than tau  -> pi_t
        M-step   y_t ~ pi_t and y_{t-1} ~ pi_{t-1} on the RM part, margin under r_{t-1},
                 variance-adaptive filter, Bradley-Terry update     -> r_t

Every step is a stage of ``RunDir``: done stages are read back, never redone, so rerunning the
same command resumes where the last one stopped.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chat import encode_prompt
from .config import MTConfig
from .data import load_prompts, part_for, split_prompts
from .estep import train_dpo
from .filter import epsilon, filter_stats, keep_mask
from .generate import Sampling, load_generator
from .modeling import load_tokenizer
from .mstep import train_reward_model
from .pair_rule import build_pairs
from .progress import QUIET, Reporter
from .records import read_jsonl, write_json, write_jsonl
from .reward import load_scorer
from .rundir import RunDir, StageContext
from .select import decide, win_rate

Evaluator = Callable[[StageContext, str, str, int], dict[str, Any]]


class StageError(RuntimeError):
    """A stage failed; finished stages are kept and a rerun resumes at this one."""


def stage_seed(seed: int, iteration: int | None, name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{iteration}/{name}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 1)


@dataclass
class Models:
    """The pair of models the loop carries from one iteration to the next."""

    policy: str
    reward: str


@dataclass
class LoopHooks:
    """Optional extras: an evaluator run on (policy, reward) after every iteration (the gold world's)."""

    evaluate: Evaluator | None = None
    prompts: Callable[[MTConfig], tuple[list[dict], dict[str, list[dict]] | None]] | None = None
    initial_models: Callable[[MTConfig], Models] | None = None


@dataclass
class RunResult:
    run_dir: Path
    policy: str
    reward: str
    iterations_done: int
    stopped: bool
    rows: list[dict[str, Any]] = field(default_factory=list)


class MutualTaught:
    def __init__(self, cfg: MTConfig, run_dir: str | Path, reporter: Reporter = QUIET,
                 hooks: LoopHooks | None = None, command: list[str] | None = None,
                 launcher: Sequence[str] | None = None):
        self.cfg = cfg
        self.reporter = reporter
        self.hooks = hooks or LoopHooks()
        self.launcher = list(launcher) if launcher else None  # how the updates run, not what they compute
        self.rd = RunDir.open(run_dir, cfg.to_dict(), cfg.run.seed, command)

    # ------------------------------------------------------------------ plumbing
    def stage(self, iteration: int | None, name: str, fn) -> dict[str, Any]:
        label = name if iteration is None else f"iter_{iteration}/{name}"
        try:
            result, ran = self.rd.run_stage(iteration, name, fn, stage_seed(self.cfg.run.seed, iteration, name))
        except (KeyboardInterrupt, StageError):
            raise
        except Exception as e:
            raise StageError(
                f"stage {label} failed: {type(e).__name__}: {e}. Finished stages are kept in {self.rd.root}; "
                "rerun the same command to resume here."
            ) from e
        if not ran:
            self.reporter.log(f"[dim]{label}: done earlier, reusing it[/dim]")
        return result

    def abs(self, path: str) -> str:
        """Run-relative paths become absolute; hub ids and absolute paths pass through."""
        candidate = self.rd.root / path
        return str(candidate) if not Path(path).is_absolute() and candidate.exists() else path

    def sampling(self, n: int, seed: int, temperature: float | None = None) -> Sampling:
        s = self.cfg.sampling
        return Sampling(n=n, temperature=s.temperature if temperature is None else temperature, top_p=s.top_p,
                        max_new_tokens=s.max_new_tokens, seed=seed)

    def generate(self, policy: str, rows: list[dict], sampling: Sampling, what: str) -> tuple[list[list[dict]], dict]:
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

    def score(self, reward: str, prompts: list, responses: list[str], what: str) -> list[float]:
        m = self.cfg.models
        scorer = load_scorer(reward, dtype=m.dtype, batch_size=self.cfg.sampling.batch_size,
                             attn_implementation=m.attn_implementation, trust_remote_code=m.trust_remote_code)
        try:
            with self.reporter.task(what, len(responses)) as advance:
                return scorer.score(prompts, responses, advance)
        finally:
            scorer.close()

    # ------------------------------------------------------------------ data
    def prepare_data(self, initial: Models) -> dict[str, str]:
        def run(ctx: StageContext):
            d = self.cfg.data
            if self.hooks.prompts is not None:
                prompts, fixed = self.hooks.prompts(self.cfg)
            else:
                prompts = load_prompts(d.prompts, d.prompt_column, d.id_column, d.hub_split)
                fixed = None
            tokenizer = load_tokenizer(initial.policy, self.cfg.models.trust_remote_code)
            kept = [p for p in prompts if len(encode_prompt(tokenizer, p["prompt"])) <= d.max_prompt_tokens]
            if fixed is not None:  # the source already fixed its selection set (the gold world does)
                splits = split_prompts(kept, d.num_parts, 0, ctx.seed, d.max_prompts)
                splits["selection"] = fixed["selection"]
            else:
                splits = split_prompts(kept, d.num_parts, d.selection_size, ctx.seed, d.max_prompts)
            result = {}
            for name, rows in splits.items():
                write_jsonl(ctx.dir / f"{name}.jsonl", rows)
                result[name] = ctx.rel(ctx.dir / f"{name}.jsonl")
            metrics = {"prompts_loaded": len(prompts), "prompts_dropped_too_long": len(prompts) - len(kept),
                       **{f"size_{k}": len(v) for k, v in splits.items()}}
            return result, metrics

        return self.stage(None, "data", run)

    def start_policy(self, t: int, models: Models) -> str:
        """The policy iteration t starts from: pi_{t-1}; RLP restarts from pi_0 against each new RM."""
        return models.policy

    def prepare_models(self, models: Models) -> Models:
        """Work a method does once before its first iteration (Meta-Rewarding trains its judge here)."""
        return models

    # ------------------------------------------------------------------ E-step
    # The E-step's three decisions are methods of their own, so a baseline that differs only in who
    # labels the samples, how pairs are built or which loss trains the policy overrides just that one.
    def policy_prompts(self, t: int, splits: dict[str, list[dict]]) -> list[dict]:
        return splits[part_for(t, self.cfg.data.pm_parts)]

    def label(self, t: int, models: Models, rows: list[dict], ctx: StageContext) -> tuple[list[list[float]], dict]:
        """One number per response (higher = better); Mutual-Taught asks the current RM r_{t-1}."""
        flat = [(r["prompt"], resp["text"]) for r in rows for resp in r["responses"]]
        scores = iter(self.score(models.reward, [p for p, _ in flat], [y for _, y in flat],
                                 f"iter {t} E-step: scoring with r_{t - 1}"))
        return [[next(scores) for _ in r["responses"]] for r in rows], {}

    def make_pairs(self, t: int, scored: list[dict]) -> tuple[list[dict], dict]:
        pairs, stats = build_pairs(scored, self.cfg.estep.pair_rule)
        return pairs, {**stats.as_dict(), "pair_rule": self.cfg.estep.pair_rule}

    def train_policy(self, t: int, models: Models, pairs: list[dict], ctx: StageContext) -> tuple[list[Path], dict]:
        reference = None if self.cfg.estep.reference == "previous" else self.initial.policy
        return train_dpo(models.policy, pairs, self.cfg.estep, self.cfg.models, ctx.dir / "candidates", ctx.seed,
                         reference_path=reference, reporter=self.reporter, launcher=self.launcher)

    def estep(self, t: int, models: Models, prompts: list[dict]) -> tuple[list[str], list[dict]]:
        pair_rows = self.estep_pairs(t, models, prompts)

        def train(ctx: StageContext):
            candidates, metrics = self.train_policy(t, models, pair_rows, ctx)
            return {"candidates": [ctx.rel(c) for c in candidates]}, metrics

        candidates = self.stage(t, "estep_train", train)["candidates"]
        return candidates, pair_rows

    def sample_stage(self, t: int, name: str, policy: str, prompts: list[dict], n: int, what: str,
                     temperature: float | None = None) -> str:
        """A stage that samples ``n`` responses per prompt; returns the run-relative path of its rows."""

        def run(ctx: StageContext):
            outs, stats = self.generate(policy, prompts, self.sampling(n, ctx.seed, temperature), what)
            rows = [{**p, "responses": o} for p, o in zip(prompts, outs, strict=True)]
            write_jsonl(ctx.dir / "samples.jsonl", rows)
            return {"samples": ctx.rel(ctx.dir / "samples.jsonl")}, {"prompts": len(rows), **stats}

        return self.stage(t, name, run)["samples"]

    def estep_pairs(self, t: int, models: Models, prompts: list[dict]) -> list[dict]:
        """Sample K responses, label them, build pairs: three stages, each resumable."""
        k = self.cfg.sampling.k
        samples_path = self.sample_stage(t, "estep_generate", models.policy, prompts, k,
                                         f"iter {t} E-step: sampling K={k}")

        def score(ctx: StageContext):
            rows = read_jsonl(self.rd.path(samples_path))
            rewards, extra = self.label(t, models, rows, ctx)
            for r, rs in zip(rows, rewards, strict=True):
                for resp, value in zip(r["responses"], rs, strict=True):
                    resp["reward"] = value
            write_jsonl(ctx.dir / "scored.jsonl", rows)
            flat = [v for rs in rewards for v in rs]
            return {"scored": ctx.rel(ctx.dir / "scored.jsonl")}, {"reward_mean": sum(flat) / len(flat), **extra}

        scored_path = self.stage(t, "estep_score", score)["scored"]

        def pairs(ctx: StageContext):
            pairs, stats = self.make_pairs(t, read_jsonl(self.rd.path(scored_path)))
            write_jsonl(ctx.dir / "pairs.jsonl", pairs)
            return {"pairs": ctx.rel(ctx.dir / "pairs.jsonl")}, stats

        return read_jsonl(self.rd.path(self.stage(t, "estep_pairs", pairs)["pairs"]))

    # ------------------------------------------------------------------ selection
    def select(self, t: int, models: Models, candidates: list[str], selection: list[dict]) -> dict[str, Any]:
        cfg = self.cfg

        def run(ctx: StageContext):
            # One sampling seed for every model: candidates are compared on common random numbers.
            sampling = self.sampling(1, ctx.seed, cfg.select.temperature)
            names = candidates if cfg.select.enabled else candidates[-1:]
            answers = {}
            for name in ["previous", *names]:
                path = models.policy if name == "previous" else self.abs(name)
                outs, _ = self.generate(path, selection, sampling, f"iter {t} selection: {Path(name).name}")
                answers[name] = [o[0]["text"] for o in outs]
            prompts = [r["prompt"] for r in selection]
            rewards = {name: self.score(models.reward, prompts, texts, f"iter {t} selection: judging")
                       for name, texts in answers.items()}
            rates = {name: win_rate(rewards[name], rewards["previous"]) for name in names}
            decision = decide(rates, cfg.select.tau, cfg.select.stop_rule)
            write_jsonl(ctx.dir / "answers.jsonl", [
                {"id": r["id"], **{f"{Path(n).name}": {"text": answers[n][i], "reward": rewards[n][i]}
                                   for n in answers}}
                for i, r in enumerate(selection)
            ])
            result = {"policy": decision.best, "win_rate": decision.win_rate, "stop": decision.stop}
            metrics = {"win_rates": {Path(n).name: v for n, v in rates.items()},
                       "selected": Path(decision.best).name, "selected_win_rate": decision.win_rate,
                       "stop": decision.stop, "decision": decision.reason, "tau": cfg.select.tau,
                       "selection_enabled": cfg.select.enabled}
            return result, metrics

        return self.stage(t, "select", run)

    # ------------------------------------------------------------------ M-step
    def mstep(self, t: int, old: Models, new_policy: str, prompts: list[dict], estep_pairs: list[dict]) -> str:
        cfg = self.cfg
        n = cfg.mstep.samples_per_prompt

        def generate(ctx: StageContext):
            sampling = self.sampling(n, ctx.seed)
            new, s_new = self.generate(new_policy, prompts, sampling, f"iter {t} M-step: sampling pi_{t}")
            old_, s_old = self.generate(old.policy, prompts, sampling, f"iter {t} M-step: sampling pi_{t - 1}")
            rows = [{**p, "new": a, "old": b} for p, a, b in zip(prompts, new, old_, strict=True)]
            write_jsonl(ctx.dir / "samples.jsonl", rows)
            return {"samples": ctx.rel(ctx.dir / "samples.jsonl")}, {
                "prompts": len(rows), "completions": s_new["completions"] + s_old["completions"],
                "new_tokens": s_new["new_tokens"] + s_old["new_tokens"]}

        samples_path = self.stage(t, "mstep_generate", generate)["samples"]

        def filter_(ctx: StageContext):
            rows = read_jsonl(self.rd.path(samples_path))
            flat = [(r, a["text"], b["text"]) for r in rows for a, b in zip(r["new"], r["old"], strict=True)]
            prompts_ = [r["prompt"] for r, _, _ in flat]
            r_new = self.score(old.reward, prompts_, [a for _, a, _ in flat], f"iter {t} M-step: scoring y_t")
            r_old = self.score(old.reward, prompts_, [b for _, _, b in flat], f"iter {t} M-step: scoring y_t-1")
            margins = [a - b for a, b in zip(r_new, r_old, strict=True)]
            eps = epsilon(r_old, margins, cfg.mstep.eps)
            mask = keep_mask(margins, eps) if cfg.mstep.filter else [True] * len(margins)
            pseudo = [
                {"id": r["id"], "prompt": r["prompt"], "chosen": a, "rejected": b, "margin": d, "source": "pseudo"}
                for (r, a, b), d, keep in zip(flat, margins, mask, strict=True) if keep and a != b
            ]
            identical = sum(1 for (_, a, b), keep in zip(flat, mask, strict=True) if keep and a == b)
            rng = random.Random(ctx.seed)
            rng.shuffle(pseudo)
            n_held = int(len(pseudo) * cfg.mstep.heldout_fraction)
            heldout, train_rows = pseudo[:n_held], pseudo[n_held:]
            if cfg.mstep.include_estep_pairs:
                train_rows += [{"id": p["id"], "prompt": p["prompt"], "chosen": p["chosen"],
                                "rejected": p["rejected"], "source": "estep"} for p in estep_pairs]
            write_jsonl(ctx.dir / "train_pairs.jsonl", train_rows)
            write_jsonl(ctx.dir / "heldout_pairs.jsonl", heldout)
            stats = filter_stats(margins, mask, eps)
            stats.update({"eps_definition": cfg.mstep.eps, "filter_enabled": cfg.mstep.filter,
                          "pseudo_pairs": len(margins), "pseudo_identical_skipped": identical,
                          "rm_train_pairs": len(train_rows), "rm_heldout_pairs": len(heldout),
                          "pseudo_agreement_old_rm": sum(d > 0 for d in margins) / max(1, len(margins))})
            return {"train": ctx.rel(ctx.dir / "train_pairs.jsonl"),
                    "heldout": ctx.rel(ctx.dir / "heldout_pairs.jsonl")}, stats

        paths = self.stage(t, "mstep_filter", filter_)

        def train(ctx: StageContext):
            rows = read_jsonl(self.rd.path(paths["train"]))
            init = old.reward if cfg.mstep.init == "previous" else self.initial.reward
            out, metrics = train_reward_model(init, rows, cfg.mstep, cfg.models, ctx.dir, ctx.seed,
                                              reporter=self.reporter, launcher=self.launcher)
            heldout = read_jsonl(self.rd.path(paths["heldout"]))
            if heldout:
                for label, path in (("before", old.reward), ("after", str(out))):
                    chosen = self.score(path, [h["prompt"] for h in heldout], [h["chosen"] for h in heldout],
                                        f"iter {t} M-step: held-out accuracy")
                    rejected = self.score(path, [h["prompt"] for h in heldout], [h["rejected"] for h in heldout],
                                          f"iter {t} M-step: held-out accuracy")
                    metrics[f"rm_heldout_accuracy_{label}"] = sum(
                        c > r for c, r in zip(chosen, rejected, strict=True)) / len(heldout)
            metrics["rm_init"] = cfg.mstep.init
            return {"reward": ctx.rel(out)}, metrics

        return self.stage(t, "mstep_train", train)["reward"]

    # ------------------------------------------------------------------ evaluation hook
    def evaluate(self, t: int, models: Models) -> None:
        if self.hooks.evaluate is None:
            return

        def run(ctx: StageContext):
            metrics = self.hooks.evaluate(ctx, models.policy, models.reward, t)
            write_json(ctx.dir / "metrics.json", metrics)
            return {}, metrics

        self.stage(t, "evaluate", run)

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        cfg = self.cfg
        self.initial = (self.hooks.initial_models(cfg) if self.hooks.initial_models
                        else Models(cfg.models.policy, cfg.models.reward))
        splits = {k: read_jsonl(self.rd.path(v)) for k, v in self.prepare_data(self.initial).items()}
        models = self.prepare_models(self.initial)
        self.evaluate(0, models)
        stopped, done = False, 0
        for t in range(1, cfg.run.iterations + 1):
            self.reporter.log(f"[bold]iteration {t}[/bold]: PM on {part_for(t, cfg.data.pm_parts)}, "
                              f"RM on {part_for(t, cfg.data.rm_parts)}")
            start = Models(self.start_policy(t, models), models.reward)
            candidates, estep_pairs = self.estep(t, start, self.policy_prompts(t, splits))
            decision = self.select(t, start, candidates, splits["selection"])
            if decision["stop"]:
                stopped = True
                self.reporter.log(f"iteration {t}: stop rule fired (best win rate {decision['win_rate']:.3f} "
                                  f"< tau {cfg.select.tau}); pi_{t - 1} is final")
                break
            new_policy = self.abs(decision["policy"])
            reward = models.reward
            if cfg.mstep.enabled:
                reward = self.abs(self.mstep(t, start, new_policy, splits[part_for(t, cfg.data.rm_parts)],
                                             estep_pairs))
            models = Models(new_policy, reward)
            done = t
            self.evaluate(t, models)
        result = RunResult(self.rd.root, models.policy, models.reward, done, stopped, summary_rows(self.rd))
        self.rd.write_summary({"final_policy": result.policy, "final_reward": result.reward,
                               "iterations_done": done, "stopped_by_rule": stopped, "rows": result.rows})
        return result

    def close(self) -> None:
        self.rd.close()


SUMMARY_KEYS = {
    "estep_pairs": ["pairs_built", "pairs_skipped_tie"],
    "estep_train": ["loss_last", "dpo_reward_accuracy", "dpo_steps"],
    "select": ["selected", "selected_win_rate", "stop"],
    "mstep_filter": ["eps_t", "filter_kept", "filter_dropped", "filter_mild_negatives_kept"],
    "mstep_train": ["rm_heldout_accuracy_before", "rm_heldout_accuracy_after"],
}


def summary_rows(rd: RunDir) -> list[dict[str, Any]]:
    """One row per iteration with the headline numbers of each stage (plus any evaluator's)."""
    rows: dict[int, dict[str, Any]] = {}
    for rec in rd.records():
        t = rec["iteration"]
        if t is None:
            continue
        row = rows.setdefault(t, {"iteration": t, "wall_time_s": 0.0})
        row["wall_time_s"] = round(row["wall_time_s"] + rec["wall_time_s"], 1)
        keys = SUMMARY_KEYS.get(rec["stage"])
        metrics = rec["metrics"]
        if rec["stage"] == "evaluate":
            row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))})
        elif keys:
            row.update({k: metrics[k] for k in keys if k in metrics})
    return [rows[t] for t in sorted(rows)]


def run_mutual_taught(cfg: MTConfig, run_dir: str | Path, reporter: Reporter = QUIET,
                      command: list[str] | None = None, launcher: Sequence[str] | None = None) -> RunResult:
    """Run (or resume) Mutual-Taught in ``run_dir``; the gold world plugs in when the config names it."""
    hooks = None
    if cfg.uses_world:
        from .world.hooks import world_hooks

        hooks = world_hooks(cfg, reporter)
    loop = MutualTaught(cfg, run_dir, reporter, hooks, command, launcher)
    try:
        return loop.run()
    finally:
        loop.close()
