"""Meta-Rewarding (Wu et al., 2024): one model is actor, judge and meta-judge of its own training data.

No code was released and the paper's text was not at hand, so the recipe follows secondary
summaries (../shared/spec/baselines.md) and every number is a field of ``MetaRewardingOptions``.
Per iteration, on the loop's own stages:

    judge_sft     (once) SFT the initial policy on judge-training data (Self-Rewarding's "EFT")
    estep_generate  the actor samples K responses per prompt (the shared sampler)
    estep_score   the model judges every response N times; unparseable judgments are dropped and
                  counted, the rest averaged (the RM is never asked)
    estep_pairs   actor pairs, length-controlled by rho
    meta_judge    (iterations 1-2) the model compares pairs of its own judgments of the response
                  they disagree on most; positional-bias weights, Bradley-Terry (Elo) ratings;
                  best vs worst judgment is a judge pair
    estep_train   DPO from the current model on actor + judge pairs

On the gold world a 100K-parameter model cannot judge from a prompt, so the judge skill is taught,
as EFT does: pi_0's samples on the held-out ``rm_build`` split, their gold reward bucketed into
1-5 and rendered as "Word. Score: k", plus meta-judge examples that pick the judgment nearer the
gold bucket, plus the samples themselves as actor examples (Self-Rewarding's IFT + EFT). Judging is still generation and parsing, so parse failures are real.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations, permutations
from pathlib import Path
from typing import Any

from mt.chat import Messages, as_messages, prompt_text
from mt.config import ConfigError, UpdateConfig
from mt.engine import Models
from mt.estep import dpo_update
from mt.generate import Sampling
from mt.method import Method, Run, part_prompts
from mt.records import InputError, read_jsonl, write_jsonl
from mt.rundir import StageContext

from . import meta_judge as mj
from .registry import MethodSpec, register

BIAS_SCOPES = ("response", "iteration")


def _f(default, help: str, reconstructed: bool = False, **extra):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, "reconstructed": reconstructed})
    return field(default=default, metadata={"help": help, "reconstructed": reconstructed, **extra})


@dataclass
class MetaRewardingOptions:
    # -- judge and meta-judge
    n_judgments: int = _f(11, "Judgments sampled per response, N (paper: 11).", ge=1)
    judge_temperature: float = _f(0.8, "Sampling temperature of the judge and the meta-judge.", True, ge=0)
    judge_top_p: float = _f(0.95, "Nucleus threshold of the judge and the meta-judge.", True, gt=0, le=1)
    judge_max_new_tokens: int = _f(1024, "Longest judgment.", True, ge=1)
    meta_max_new_tokens: int = _f(1024, "Longest meta-judgment.", True, ge=1)
    score_min: int = _f(
        0, "Lowest valid score (the additive 5-point prompt gives 0-5); others are unparseable.", ge=0)
    score_max: int = _f(5, "Highest valid score.", ge=1)
    judge_prompt: str = _f("", "File with the judge prompt ({prompt}, {response}; it must ask for a final "
                               "'Score: k'), or builtin:tiny, the one-line template the tiny recipe teaches.")
    meta_judge_prompt: str = _f("", "File with the meta-judge prompt ({prompt}, {response}, {judgment_a}, "
                                    "{judgment_b}; it must ask for 'Winner: A' or 'Winner: B'), or builtin:tiny.")
    # -- actor pairs
    rho: list[float] = _f([0.0, 0.32, 0.32, 0.4], "Length-control rho of iteration t (the last value repeats); "
                                                   "0 = best vs worst.")
    prompts_per_iteration: int = _f(
        5000, "Prompts of the iteration's part that are used (paper: 5K); 0 = all.", ge=0)
    # -- judge pairs
    judge_iterations: list[int] = _f([1, 2], "Iterations that train on judge pairs (paper: 1 and 2).")
    bias_scope: str = _f("response", "Where the positional-bias weights are estimated: each response's battles, "
                                     "or all of the iteration's.", True, choices=BIAS_SCOPES)
    bt_prior: float = _f(
        0.1, "Virtual wins each way for every pair of judgments that met (keeps BT finite).", True, ge=0)
    max_chosen_judgment_tokens: int = _f(
        512, "A judge pair whose chosen judgment is longer is dropped.", True, ge=1)
    # -- judge-training set (EFT) and its SFT, before iteration 1
    eft_data: str = _f("", "Outside the gold world: a JSONL file of judge-training rows (prompt, completion). "
                           "Empty = models.policy is taken as already trained to judge.")
    eft_samples: int = _f(
        2, "Gold world: pi_0 samples per held-out prompt, each one judge and one meta example.", ge=1)
    eft_replay: bool = _f(True, "Gold world: each sample is also an actor example (prompt -> pi_0's own answer), as "
                                "Self-Rewarding's seed model learns IFT with EFT; without it the tiny actor is "
                                "overwritten by the judge format.")
    eft_gold_edges: list[float] = _f([0.25, 0.5, 0.75, 1.0], "Gold world: gold reward edges of scores 2..5.")
    eft_learning_rate: float = _f(5.5e-6, "SFT peak learning rate (Self-Rewarding's SFT value).", True, gt=0)
    eft_epochs: float = _f(1.0, "SFT passes over the judge-training set.", True, gt=0)
    eft_batch_size: int = _f(16, "SFT examples per optimiser step.", True, ge=1)
    eft_per_device_batch_size: int = _f(4, "SFT examples per device per forward pass.", ge=1)
    eft_max_length: int = _f(2048, "SFT prompt + completion tokens.", ge=1)

    def check(self) -> None:
        """What a single field's range cannot say (``load_section`` checked the fields one by one)."""
        if self.score_min >= self.score_max:
            raise ConfigError(f"method.score_min={self.score_min} must be below "
                              f"method.score_max={self.score_max}")
        if not self.rho or any(not 0 <= r < 0.5 for r in self.rho):
            raise ConfigError(f"method.rho={self.rho}: expected values in [0, 0.5) (at 0.5 the chosen and "
                              "rejected thresholds meet)")
        if self.eft_gold_edges != sorted(self.eft_gold_edges):
            raise ConfigError(f"method.eft_gold_edges={self.eft_gold_edges}: expected ascending edges")
        if self.eft_batch_size % self.eft_per_device_batch_size:
            raise ConfigError(f"method.eft_batch_size={self.eft_batch_size} is not a multiple of "
                              f"method.eft_per_device_batch_size={self.eft_per_device_batch_size}")
        mj.load_template(self.judge_prompt, mj.JUDGE_FIELDS, "judge_prompt")
        mj.load_template(self.meta_judge_prompt, mj.META_FIELDS, "meta_judge_prompt")


# ---------------------------------------------------------------- actor pairs (pure)
def rho_at(schedule: Sequence[float], t: int) -> float:
    return schedule[min(t, len(schedule)) - 1]


def length_controlled_pair(scores: Sequence[float], lengths: Sequence[int], rho: float) -> tuple[int, int] | None:
    """(chosen, rejected): the shortest response near the best score vs the longest near the worst.

    chosen = shortest with score >= (1-rho) S_max + rho S_min; rejected = longest with score <=
    (1-rho) S_min + rho S_max. Length ties go to the better (chosen) or worse (rejected) score, then
    to the first index. None when the scores do not separate the responses. A score within a
    billionth of the spread of a threshold counts as on it: float noise, scaled so that close scores
    still separate (a fixed tolerance let scores 1e-10 apart swap chosen and rejected).
    """
    if len(scores) < 2 or max(scores) == min(scores):
        return None
    hi, lo = max(scores), min(scores)
    spread = hi - lo
    tol = 1e-9 * spread
    # written as offsets from hi and lo, so rounding never moves a threshold past the extreme itself
    top = [i for i, s in enumerate(scores) if s >= hi - rho * spread - tol]
    bottom = [i for i, s in enumerate(scores) if s <= lo + rho * spread + tol]
    chosen = min(top, key=lambda i: (lengths[i], -scores[i], i))
    rejected = min(bottom, key=lambda i: (-lengths[i], scores[i], i))
    return chosen, rejected


def parse_judgments(texts: Sequence[dict], low: int, high: int) -> list[dict]:
    """Each generated judgment with its parsed score (None = unparseable, dropped from the mean)."""
    return [{**j, "score": mj.parse_score(j["text"], low, high)} for j in texts]


def mean_score(judgments: Sequence[dict]) -> float | None:
    valid = [j["score"] for j in judgments if j["score"] is not None]
    return statistics.fmean(valid) if valid else None


# ---------------------------------------------------------------- judge pairs (pure but for meta_fn)
MetaFn = Callable[[list[tuple[Messages, str, str, str]]], list[str]]


def pick_battle(responses: Sequence[dict]) -> tuple[dict, list[dict]] | None:
    """The response whose parsed scores vary most, and its distinct parsed judgments (None: no variance)."""
    best, best_var = None, 0.0
    for resp in responses:
        scores = [j["score"] for j in resp["judgments"] if j["score"] is not None]
        var = statistics.pvariance(scores) if len(scores) > 1 else 0.0
        if var > best_var:
            best, best_var = resp, var
    if best is None:
        return None
    distinct = list({j["text"]: j for j in best["judgments"] if j["score"] is not None}.values())
    return best, distinct


def build_judge_pairs(rows: Sequence[dict], meta_fn: MetaFn, judge_prompt: Callable[[Messages, str], Messages],
                      o: MetaRewardingOptions) -> tuple[list[dict], dict[str, Any]]:
    """Judge pairs: meta-judge every ordered pair of one response's judgments, rate, take best vs worst."""
    battles, skipped = [], Counter()
    for row in rows:
        picked = pick_battle(row["responses"])
        if picked is None:
            skipped["no_variance"] += 1
        else:
            battles.append((row, *picked))
    orders = [list(permutations(range(len(js)), 2)) for _, _, js in battles]
    requests = [(row["prompt"], resp["text"], js[a]["text"], js[b]["text"])
                for (row, resp, js), pairs in zip(battles, orders, strict=True) for a, b in pairs]
    texts = iter(meta_fn(requests) if requests else [])
    verdicts = [[(a, b, v) for a, b in pairs if (v := mj.parse_verdict(next(texts))) is not None] for pairs in orders]
    flat = [v for vs in verdicts for v in vs]
    global_weights = mj.positional_weights(flat)
    out = []
    for (row, resp, js), vs in zip(battles, verdicts, strict=True):
        weights = mj.positional_weights(vs) if o.bias_scope == "response" else global_weights
        ranked = mj.extremes(mj.bt_ratings(mj.battle_matrix(len(js), vs, weights), o.bt_prior))
        if ranked is None:
            skipped["no_winner"] += 1
            continue
        chosen, rejected = js[ranked[0]], js[ranked[1]]
        if chosen["num_tokens"] > o.max_chosen_judgment_tokens:
            skipped["chosen_too_long"] += 1
            continue
        out.append({"id": row["id"], "prompt": judge_prompt(row["prompt"], resp["text"]), "chosen": chosen["text"],
                    "rejected": rejected["text"], "chosen_score": chosen["score"],
                    "rejected_score": rejected["score"], "response": resp["text"], "source": "judge"})
    stats = {"judge_pairs_built": len(out), "judge_pairs_skipped_no_variance": skipped["no_variance"],
             "judge_pairs_skipped_no_winner": skipped["no_winner"],
             "judge_pairs_skipped_chosen_too_long": skipped["chosen_too_long"],
             "meta_verdicts": len(requests), "meta_verdicts_unparseable": len(requests) - len(flat),
             "meta_parse_rate": len(flat) / len(requests) if requests else None,
             "meta_first_position_win_rate": sum(v == "A" for *_, v in flat) / len(flat) if flat else None,
             "bias_scope": o.bias_scope}
    return out, stats


# ---------------------------------------------------------------- the parts
class MetaRewarding:
    """Meta-Rewarding's parts, bound to its options and prompt templates (``build`` hands them to the loop)."""

    def __init__(self, options: MetaRewardingOptions):
        self.options = options

    @cached_property
    def judge_template(self) -> str:
        return mj.load_template(self.options.judge_prompt, mj.JUDGE_FIELDS, "judge_prompt")

    @cached_property
    def meta_template(self) -> str:
        return mj.load_template(self.options.meta_judge_prompt, mj.META_FIELDS, "meta_judge_prompt")

    # -- rendering and sampling
    def judge_prompt(self, prompt: Messages, response: str) -> Messages:
        return as_messages(mj.render(self.judge_template, prompt=prompt_text(prompt), response=response))

    def meta_prompt(self, prompt: Messages, response: str, a: str, b: str) -> Messages:
        return as_messages(mj.render(self.meta_template, prompt=prompt_text(prompt), response=response,
                                     judgment_a=a, judgment_b=b))

    def judge_sampling(self, n: int, max_new_tokens: int, seed: int) -> Sampling:
        o = self.options
        return Sampling(n=n, temperature=o.judge_temperature, top_p=o.judge_top_p, max_new_tokens=max_new_tokens,
                        seed=seed)

    # -- before iteration 1: teach the model to judge
    def prepare(self, run: Run, models: Models) -> Models:
        o = self.options

        def stage(ctx: StageContext):
            if run.env.gold is not None and run.env.heldout_prompts():
                examples, stats = self.gold_eft_set(run, models.policy, ctx.seed)
            elif o.eft_data:
                examples = [{"prompt": as_messages(r["prompt"]), "completion": as_messages_reply(r["completion"])}
                            for r in read_jsonl(o.eft_data)]
                stats = {"eft_source": o.eft_data}
            else:
                return {"policy": None}, {"eft": "skipped: method.eft_data is empty, models.policy judges as is"}
            write_jsonl(ctx.dir / "eft.jsonl", examples)
            metrics = self.sft(run, models.policy, examples, ctx.dir / "model", ctx.seed)
            return {"policy": ctx.rel(ctx.dir / "model")}, {"eft_examples": len(examples), **stats, **metrics}

        policy = run.engine.stage(None, "judge_sft", stage)["policy"]
        return Models(run.engine.abs(policy), models.reward) if policy else models

    def gold_eft_set(self, run: Run, policy: str, seed: int) -> tuple[list[dict], dict[str, Any]]:
        """pi_0's samples on the environment's held-out prompts, judged by gold buckets; meta examples alike."""
        o = self.options
        rows = run.env.heldout_prompts()
        outs, _ = run.engine.generate(policy, rows, run.engine.sampling(o.eft_samples, seed),
                                      "judge SFT: sampling pi_0")
        rng = random.Random(seed)
        scores = range(1, len(o.eft_gold_edges) + 2)
        examples, buckets = [], Counter()
        for row, comps in zip(rows, outs, strict=True):
            for comp in comps:
                y = comp["text"]
                b = mj.bucket(run.env.gold(row, y), o.eft_gold_edges)
                buckets[b] += 1
                if o.eft_replay:
                    examples.append({"prompt": row["prompt"], "completion": as_messages_reply(y)})
                examples.append({"prompt": self.judge_prompt(row["prompt"], y),
                                 "completion": as_messages_reply(mj.tiny_judgment(b))})
                # Two judgments at different distances from the gold bucket; the nearer one wins.
                s, u = rng.choice([p for p in combinations(scores, 2) if abs(p[0] - b) != abs(p[1] - b)])
                if rng.random() < 0.5:
                    s, u = u, s
                winner = "A" if abs(s - b) < abs(u - b) else "B"
                examples.append({"prompt": self.meta_prompt(row["prompt"], y, mj.tiny_judgment(s),
                                                            mj.tiny_judgment(u)),
                                 "completion": as_messages_reply(mj.tiny_verdict(winner))})
        rng.shuffle(examples)
        return examples, {"eft_source": f"{run.env.name}: held-out prompts, gold bucketed",
                          "eft_score_counts": {str(k): buckets[k] for k in sorted(buckets)}}

    def sft(self, run: Run, policy: str, examples: list[dict], out: Path, seed: int) -> dict[str, Any]:
        o, e = self.options, run.cfg.estep
        update = UpdateConfig(learning_rate=o.eft_learning_rate, global_batch_size=o.eft_batch_size,
                              per_device_batch_size=o.eft_per_device_batch_size, epochs=o.eft_epochs,
                              max_length=o.eft_max_length, gradient_checkpointing=e.gradient_checkpointing,
                              bf16=e.bf16, logging_steps=e.logging_steps)
        metrics = run.engine.train_sft(policy, examples, update, out, seed, "judge SFT")
        return {k: v for k, v in metrics.items() if k != "sft_examples"}

    # -- the E-step's parts
    def policy_prompts(self, run: Run, t: int, models: Models, splits: dict[str, list[dict]]) -> list[dict]:
        rows = part_prompts(run, t, models, splits)
        n = self.options.prompts_per_iteration
        return rows[:n] if n else rows

    def label(self, run: Run, t: int, models: Models, rows: list[dict], ctx: StageContext):
        """The mean of each response's parseable judgments by the current model.

        Each response keeps its judgments beside it in scored.jsonl; a response with no parseable
        judgment has no score, so it leaves the rows (kept in unjudged.jsonl) and is counted.
        """
        o, gold = self.options, run.env.gold
        requests = [{"prompt": self.judge_prompt(r["prompt"], resp["text"])} for r in rows for resp in r["responses"]]
        outs, gen = run.engine.generate(models.policy, requests,
                                        self.judge_sampling(o.n_judgments, o.judge_max_new_tokens, ctx.seed),
                                        f"iter {t} judge: N={o.n_judgments} per response")
        judged = iter(outs)
        rewards, unjudged, exact, golds, parsed = [], [], [], [], 0
        for row in rows:
            kept = []
            for resp in row["responses"]:
                resp["judgments"] = parse_judgments(next(judged), o.score_min, o.score_max)
                valid = [j["score"] for j in resp["judgments"] if j["score"] is not None]
                parsed += len(valid)
                if not valid:
                    unjudged.append({"id": row["id"], **resp})
                    continue
                kept.append(resp)
                if gold is not None:
                    g = gold(row, resp["text"])
                    exact += [s == mj.bucket(g, o.eft_gold_edges) for s in valid]
                    golds.append((row["id"], g, statistics.fmean(valid)))
            row["responses"] = kept
            rewards.append([mean_score(resp["judgments"]) for resp in kept])
        write_jsonl(ctx.dir / "unjudged.jsonl", unjudged)
        total = len(requests) * o.n_judgments
        if not parsed:
            raise InputError(f"iteration {t}: none of the {total} judgments had a valid 'Score: k' in "
                             f"[{o.score_min}, {o.score_max}]; check method.judge_prompt and the judge SFT")
        metrics = {"judge": "policy", "judgments": total, "judgments_unparseable": total - parsed,
                   "judge_parse_rate": parsed / total, "responses_unjudged": len(unjudged),
                   "judge_new_tokens": gen["new_tokens"], "judge_unfinished": gen["unfinished"]}
        if golds:
            metrics["judge_gold_exact_agreement"] = sum(exact) / len(exact)
            metrics["judge_gold_pair_accuracy"] = pair_accuracy(golds)
        return rewards, metrics

    def make_pairs(self, run: Run, t: int, scored: list[dict]):
        rho, gold = rho_at(self.options.rho, t), run.env.gold
        pairs, skipped, gold_right = [], Counter(), []
        for row in scored:
            resp = row["responses"]
            picked = length_controlled_pair([r["reward"] for r in resp], [r["num_tokens"] for r in resp], rho)
            if picked is None:
                skipped["too_few_judged" if len(resp) < 2 else "tie"] += 1
                continue
            c, r = resp[picked[0]], resp[picked[1]]
            if c["text"] == r["text"]:
                skipped["identical"] += 1
                continue
            pairs.append({"id": row["id"], "prompt": row["prompt"], "chosen": c["text"], "rejected": r["text"],
                          "chosen_reward": c["reward"], "rejected_reward": r["reward"], "source": "actor"})
            if gold is not None:
                gold_right.append(gold(row, c["text"]) > gold(row, r["text"]))
        stats = {"pairs_built": len(pairs), "pairs_skipped_tie": skipped["tie"],
                 "pairs_skipped_too_few_judged": skipped["too_few_judged"],
                 "pairs_skipped_identical": skipped["identical"], "rho": rho}
        if gold_right:
            stats["actor_pair_gold_accuracy"] = sum(gold_right) / len(gold_right)
        return pairs, stats

    def judge_pairs(self, run: Run, method: Method, t: int, models: Models) -> list[dict]:
        """Iterations 1-2: judge pairs from the meta-judge's comparisons of the model's own judgments."""
        if t not in self.options.judge_iterations:
            return []
        scored_path = run.engine.rd.done_record(t, "estep_score")["result"]["scored"]

        def stage(ctx: StageContext):
            rows = read_jsonl(run.engine.rd.path(scored_path))
            pairs, stats = build_judge_pairs(
                rows, lambda reqs: self.meta_judge(run, t, models.policy, reqs, ctx.seed), self.judge_prompt,
                self.options)
            if run.env.gold is not None and pairs:
                stats["judge_pair_gold_accuracy"] = self.judge_pair_gold_accuracy(run, rows, pairs)
            write_jsonl(ctx.dir / "pairs.jsonl", pairs)
            return {"pairs": ctx.rel(ctx.dir / "pairs.jsonl")}, stats

        return read_jsonl(run.engine.rd.path(run.engine.stage(t, "meta_judge", stage)["pairs"]))

    def judge_pair_gold_accuracy(self, run: Run, rows: list[dict], pairs: list[dict]) -> float:
        """Share of judge pairs whose chosen score is nearer the response's gold bucket than the rejected one."""
        by_id = {r["id"]: r for r in rows}
        nearer = []
        for p in pairs:
            b = mj.bucket(run.env.gold(by_id[p["id"]], p["response"]), self.options.eft_gold_edges)
            nearer.append(abs(p["chosen_score"] - b) < abs(p["rejected_score"] - b))
        return sum(nearer) / len(nearer)

    def meta_judge(self, run: Run, t: int, policy: str, requests: list[tuple[Messages, str, str, str]],
                   seed: int) -> list[str]:
        rows = [{"prompt": self.meta_prompt(*req)} for req in requests]
        outs, _ = run.engine.generate(policy, rows, self.judge_sampling(1, self.options.meta_max_new_tokens, seed),
                                      f"iter {t} meta-judge: {len(rows)} comparisons")
        return [o[0]["text"] for o in outs]

    def policy_update(self, run: Run, t: int, models: Models, pairs: list[dict], ctx: StageContext):
        candidates, metrics = dpo_update(run, t, models, pairs, ctx)
        sources = Counter(p.get("source", "actor") for p in pairs)
        return candidates, {**metrics, "dpo_actor_pairs": sources["actor"], "dpo_judge_pairs": sources["judge"]}


def build(options: MetaRewardingOptions) -> Method:
    parts = MetaRewarding(options)
    return Method(prepare=parts.prepare, policy_prompts=parts.policy_prompts, label=parts.label,
                  make_pairs=parts.make_pairs, extra_pairs=parts.judge_pairs, policy_update=parts.policy_update)


def as_messages_reply(text: str | Messages) -> Messages:
    return [{"role": "assistant", "content": text}] if isinstance(text, str) else text


def pair_accuracy(golds: Sequence[tuple[str, float, float]]) -> float | None:
    """Within each prompt, the share of gold-ordered response pairs the judge's means order alike (ties 1/2)."""
    by_prompt: dict[str, list[tuple[float, float]]] = {}
    for pid, g, s in golds:
        by_prompt.setdefault(pid, []).append((g, s))
    right = total = 0.0
    for items in by_prompt.values():
        for (g1, s1), (g2, s2) in combinations(items, 2):
            if g1 == g2:
                continue
            total += 1
            right += 0.5 if s1 == s2 else float((g1 > g2) == (s1 > s2))
    return right / total if total else None


CITATION = "Wu et al., Meta-Rewarding Language Models: Self-Improving Alignment with LLM-as-a-Meta-Judge, 2024"
register(MethodSpec(
    "meta-rewarding",
    "The policy as actor, judge and meta-judge: actor pairs from its own N judgments (length-controlled), judge "
    "pairs from its meta-judgments (iterations 1-2), DPO on both; 3 iterations, RM unused.",
    CITATION,
    build,
    ("select.enabled=false", "mstep.enabled=false", "run.iterations=3", "data.pm_parts=[1, 2, 3]"),
    MetaRewardingOptions,
    notes="Reconstructed from secondary summaries (no code, paper text not at hand). On the gold world the judge "
          "is the policy itself, a 100K-parameter model taught to judge by SFT on pi_0's samples of the held-out "
          "rm_build split with gold rewards bucketed into scores 1-5 (and meta-judge examples built the same way); "
          "its judgments are generated and parsed. The iteration-0 row measures that SFT-taught model.",
    starts_at_initial=False,
))
