"""RLP: Reward Learning on Policy (arXiv 2403.19279, NAACL 2024), as two methods.

The paper's recipe, mapped onto our iterations: optimise the policy against the RM (iteration 1),
retrain the RM from the base RM on the human pairs plus what the policy's own samples teach it,
then optimise the policy again *from the SFT model* against the new RM (iteration 2 starts from
pi_0). RLP-SPG adds synthetic pairs from clustered policy samples (lambda = 0); RLP-UML adds the
multi-view representation loss on two samples of one prompt (lambda = 0.5). Policy optimisation is
DPO, not the paper's PPO, at this scale: a substitution every result records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import partial

from mt.engine import Models
from mt.method import Method, Run
from mt.records import InputError, read_jsonl, write_jsonl
from mt.rlp import load_judge, spg_pairs
from mt.rlp.uml import VIEW_COLUMNS, UMLConfig, UMLRewardTrainer, attach_views, view_pairs
from mt.rundir import StageContext

from .registry import MethodSpec, register


@dataclass
class RLPOptions:
    n: int = field(default=10, metadata={
        "help": "Policy samples per unlabelled prompt (paper: 10); SPG compares samples, so two at least.",
        "ge": 2})
    temperature: float = field(default=1.0, metadata={
        "help": "Their sampling temperature (paper: 1.0).", "ge": 0})
    gamma: float = field(default=0.5, metadata={
        "help": "SPG: keep a prompt whose largest cluster holds this share.", "ge": 0, "le": 1})
    judge: str = field(default="exact", metadata={"help": "SPG equivalence judge: exact, embedding or nli.",
                                                  "choices": ("exact", "embedding", "nli")})
    nli_model: str = field(default="", metadata={"help": "Path or id of the NLI checkpoint for judge=nli."})
    lam: float = field(default=0.5, metadata={
        "help": "UML: weight of the multi-view loss (paper: 0.5).", "ge": 0})
    skl_weight: float = field(default=1.0, metadata={"help": "UML: weight of the symmetrised KL inside L_M.",
                                                     "ge": 0})
    human_pairs: str = field(default="", metadata={
        "help": "The human preference pairs the RM is retrained on (JSONL: prompt, chosen, rejected). Empty = the "
                "environment's own (the gold world's: r_0's gold-labelled training pairs)."})
    human_pairs_limit: int = field(default=0, metadata={
        "help": "Use at most this many human pairs (0 = all).", "ge": 0})
    strip_prefixes: list[str] = field(default_factory=list, metadata={
        "help": "SPG exact judge: prefixes removed before answers are compared (the gold world's marker)."})


def initial_policy(run: Run, t: int, models: Models) -> str:
    """Every policy optimisation starts again from the SFT model pi_0, against the newest RM."""
    return run.initial.policy


def human_pairs(run: Run, options: RLPOptions, seed: int) -> list[dict]:
    """The preference pairs the RM is retrained on: the user's file, else the environment's own."""
    path = options.human_pairs or run.env.preference_pairs()
    if not path:
        raise InputError("RLP retrains the RM on human pairs: set method.human_pairs to a JSONL file with "
                         "prompt, chosen and rejected")
    rows = [{"id": r.get("id", str(i)), "prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
            for i, r in enumerate(read_jsonl(path))]
    if options.human_pairs_limit:
        rows = random.Random(seed).sample(rows, min(options.human_pairs_limit, len(rows)))
    return rows


@dataclass(frozen=True)
class RLPRewardUpdate:
    """Sample n answers of pi_t per RM prompt, build the RM's pairs (SPG or UML), retrain from the base RM."""

    options: RLPOptions
    variant: str  # "spg" or "uml"

    def __call__(self, run: Run, t: int, old: Models, new_policy: str, prompts: list[dict],
                 estep_pairs: list[dict]) -> str:
        o, engine = self.options, run.engine
        samples_path = engine.sample_stage(t, "mstep_generate", new_policy, prompts, o.n,
                                           f"iter {t} RLP: {o.n} samples of pi_{t}", o.temperature)

        def pairs(ctx: StageContext):
            samples = read_jsonl(engine.rd.path(samples_path))
            human = human_pairs(run, o, ctx.seed)
            rows, stats = (self.spg_pairs if self.variant == "spg" else self.uml_pairs)(run, t, old, samples,
                                                                                           human, ctx)
            write_jsonl(ctx.dir / "train_pairs.jsonl", rows)
            return {"train": ctx.rel(ctx.dir / "train_pairs.jsonl")}, {"human_pairs": len(human),
                                                                       "rm_train_pairs": len(rows), **stats}

        train_path = engine.stage(t, "mstep_pairs", pairs)["train"]

        def train(ctx: StageContext):
            rows = read_jsonl(engine.rd.path(train_path))
            kwargs = {}
            if self.variant == "uml":
                uml = UMLConfig(lam=o.lam, skl_weight=o.skl_weight)
                kwargs = {"trainer_cls": partial(UMLRewardTrainer, uml=uml), "extra_columns": VIEW_COLUMNS}
            out, metrics = engine.train_reward(run.initial.reward, rows, ctx.dir, ctx.seed, **kwargs)
            return {"reward": ctx.rel(out)}, {**metrics, "rm_init": "base", "rlp_variant": self.variant}

        return engine.stage(t, "mstep_train", train)["reward"]

    def spg_pairs(self, run, t, old, samples, human, ctx):
        """SPG: cluster the samples, score them with the current RM, keep confident prompts' pairs."""
        o = self.options
        rewards = run.engine.score_rows(old.reward, samples, f"iter {t} RLP: scoring with r_{t - 1}")
        for r, rs in zip(samples, rewards, strict=True):
            for resp, value in zip(r["responses"], rs, strict=True):
                resp["reward"] = value
        kwargs = {"strip_prefixes": tuple(o.strip_prefixes)} if o.judge == "exact" else {}
        if o.judge == "nli":
            kwargs = {"model_path": o.nli_model}
        synthetic, stats = spg_pairs(samples, load_judge(o.judge, **kwargs), o.gamma, ctx.seed)
        return human + synthetic, stats

    def uml_pairs(self, run, t, old, samples, human, ctx):
        """UML: the human pairs, each carrying two samples of one prompt as the two views."""
        views = view_pairs(samples, ctx.seed)
        if not views:
            raise InputError("RLP-UML needs prompts with at least two samples")
        return attach_views(human, views, ctx.seed), {"uml_view_pairs": len(views), "uml_lambda": self.options.lam}


def build_spg(options: RLPOptions) -> Method:
    return Method(start_policy=initial_policy, reward_update=RLPRewardUpdate(options, "spg"))


def build_uml(options: RLPOptions) -> Method:
    return Method(start_policy=initial_policy, reward_update=RLPRewardUpdate(options, "uml"))


CITATION = "Lang et al., Fine-Tuning Language Models with Reward Learning on Policy, NAACL 2024 (arXiv 2403.19279)"
COMMON = ("select.enabled=false", "mstep.init=base", "run.iterations=2")
NOTE = ("Policy optimisation is DPO, not PPO; on the gold world the human pairs are r_0's gold-labelled training "
        "pairs and SPG's equivalence judge compares normalised answers.")
register(MethodSpec("rlp-spg", "RLP-SPG: retrain the RM on human pairs plus synthetic pairs from clustered "
                    "policy samples (confidence >= gamma), then optimise pi_0 again.", CITATION, build_spg, COMMON, RLPOptions,
                    notes=NOTE))
register(MethodSpec("rlp-uml", "RLP-UML: retrain the RM with BT + lambda * multi-view loss on two policy "
                    "samples per prompt, then optimise pi_0 again.", CITATION, build_uml, COMMON, RLPOptions,
                    notes=NOTE))
