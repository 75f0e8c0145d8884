"""The benchmarks mt-repro knows: their names, what they take and need, and their typed options.

Nothing here imports an adapter: ``mt-repro bench list``, the generated commands and the benchmark
evaluation's config read these declarations, and ``Benchmark.run`` imports the adapter when it runs.
Each options dataclass is validated like the main config (``mt.config.load_section``): types,
choices and ranges come from the field metadata, and the help is what ``bench list`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from mt.options import option

from .registry import Benchmark, register

# ---------------------------------------------------------------------------------------------- shared

ALPACA_ANNOTATOR_TEXT = "alpaca_eval_llama3_70b_fn"  # a text ranking: any judge can give it
ALPACA_ANNOTATOR_OFFICIAL = "weighted_alpaca_eval_gpt4_turbo"  # the AE2 leaderboard's; needs first-token logprobs
ALPACA_LEADERBOARD = ["gpt4_1106_preview", "Meta-Llama-3-8B-Instruct", "SPPO-Llama-3-Instruct-8B-PairRM",
                      "Llama-3-Instruct-8B-SimPO", "Meta-Llama-3-70B-Instruct"]
ARENA_VERSIONS = ("v0.1", "v2.0")
STYLE_CONTROLS = ("none", "length", "markdown", "both")


@dataclass
class JudgedOptions:
    """What every judged benchmark accepts: the judge's prices, for the cost estimate in results.json."""

    price_per_1k_prompt: float | None = option(
        None, help="Price of 1,000 prompt tokens of the judge (any currency); with price_per_1k_completion, "
        "results.json estimates the judge's cost from the API's usage counts. None = no estimate.", ge=0)
    price_per_1k_completion: float | None = option(
        None, help="Price of 1,000 completion tokens of the judge; None = no estimate.", ge=0)

    def prices(self) -> dict[str, float] | None:
        if self.price_per_1k_prompt is None and self.price_per_1k_completion is None:
            return None
        return {"prompt": self.price_per_1k_prompt or 0.0, "completion": self.price_per_1k_completion or 0.0}


# ---------------------------------------------------------------------------------------------- AlpacaEval 2


@dataclass
class AlpacaEvalOptions(JudgedOptions):
    annotator: str | None = option(
        None, help=f"alpaca_eval evaluator config (a name under evaluators_configs/ or a configs.yaml path). None = "
        f"{ALPACA_ANNOTATOR_OFFICIAL} for judges that return logprobs, else {ALPACA_ANNOTATOR_TEXT}.")
    lc_files: str | None = option(
        None, help="Folder holding df_gamed.csv (and instruction_difficulty.csv) from the hub's tatsu-lab/alpaca_eval. "
        "None = $MT_REPRO_CACHE/alpaca_eval, then the Hugging Face cache; absent = LC without difficulty, labelled.")
    outputs: str | None = option(
        None, help="An existing model_outputs.json (alpaca_eval's shape) to judge instead of generating.")
    annotations: str | None = option(
        None, help="Score this annotations.json (alpaca_eval's shape: instruction, output_1, output_2, generator_2, "
        "preference) without generating or judging; needs no --judge and no --model.")
    name: str | None = option(None, help="Generator name of the evaluated model; None = the model folder's name.")
    swap_seed: int = option(0, help="alpaca_eval's annotator seed for the random position swap (0, as alpaca_eval).",
                        ge=0)
    top_p: float = option(1.0, help="Nucleus sampling when temperature > 0.", gt=0, le=1)
    leaderboard_models: list[str] = option(
        help="Rows of alpaca_eval's own leaderboard CSV shown beside ours (comma-separated).",
        factory=lambda: list(ALPACA_LEADERBOARD))

    def uses_judge(self) -> bool:
        return self.annotations is None

    def loads_model(self) -> bool:
        return self.annotations is None and self.outputs is None


# ---------------------------------------------------------------------------------------------- Arena-Hard


@dataclass
class ArenaHardOptions(JudgedOptions):
    version: str = option("auto", help="Rules and scorer: v0.1 or v2.0; auto = the judge config's bench_name, else the "
                      "data path, else v2.0.", choices=["auto", *ARENA_VERSIONS])
    judge_config: str | None = option(
        None, help="arena-hard-auto's judge config: config/judge_config.yaml (0489bf3) or config/arena-hard-v2.0.yaml. "
        "None = under --data's repository, else the installed wheel's v2.0 settings.")
    judge_settings: str | None = option(
        None, help="utils/judge_utils.py of your copy, read for JUDGE_SETTINGS' system prompts and baselines. "
        "None = beside judge_config.")
    system_prompt: str | None = option(None, help="A text file with the judge's system prompt, for every category.")
    judgments: str | None = option(
        None, help="Score this judgment file (arena-hard-auto's shape) without generating or judging; needs no "
        "--judge.")
    answers: str | None = option(None, help="The model's answer file (model_answer shape), used instead of generating.")
    name: str | None = option(None, help="The model's name in the files; None = the model folder's name.")
    baseline: str | None = option(None, help="The baseline model for every category; None = the version's official one.")
    category: str = option("hard_prompt", help="v2.0: the category reported as `scores`.")
    style_control: str = option("none", help="Style control (v2.0's arithmetic).", choices=STYLE_CONTROLS)
    rounds: int = option(100, help="Bootstrap rounds.", ge=1)
    bootstrap_seed: int = option(42, help="Seed of the bootstrap (42, as arena-hard-auto).", ge=0)
    weight: int = option(3, help="How many battles a strong verdict (A>>B) counts for.", ge=1)
    token_counter: str = option(
        "tiktoken", help="Token counts of the answers for style control: tiktoken (the official encodings, falling "
        "back to the policy's tokens when offline) or policy.", choices=["tiktoken", "policy"])

    def uses_judge(self) -> bool:
        return self.judgments is None

    def loads_model(self) -> bool:
        return self.judgments is None and self.answers is None


# ---------------------------------------------------------------------------------------------- RewardBench


@dataclass
class RewardBenchOptions:
    version: int = option(1, help="1: pairs, four sections; 2: RewardBench 2, best-of-4 plus the Ties subset.",
                      choices=[1, 2])
    split: str | None = option(None, help="Split of a hub dataset; None = filtered for v1, test for v2. Ignored for "
                           "local files.")
    max_length: int | None = option(
        None, help="Truncate each scored text to this many tokens, keeping BOS and the end; None = the model's "
        "max_position_embeddings. Truncated texts are counted.", gt=1)

    def uses_judge(self) -> bool:
        return False

    def loads_model(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------------- registrations

register(Benchmark(
    name="alpaca-eval",
    description="AlpacaEval 2: generate on the 805 instructions, judge against GPT-4-turbo's reference outputs, "
                "win rate and length-controlled win rate by alpaca_eval's own code.",
    model_kind="policy", options=AlpacaEvalOptions, runner="bench.alpaca_eval:run",
    judge="yes, unless annotations=FILE",
))
register(Benchmark(
    name="arena-hard",
    description="Arena-Hard v0.1 / v2.0: answer the questions, two judged games per question (positions swapped), "
                "Bradley-Terry (v0.1) or bootstrap-mean (v2.0) score with CI, optional style control; "
                "arena-hard-auto's own files.",
    model_kind="policy", options=ArenaHardOptions, runner="bench.arena_hard:run",
    judge="yes, unless judgments=FILE",
))
register(Benchmark(
    name="reward-bench",
    description="RewardBench v1 (Chat, Chat Hard, Safety, Reasoning) or v2 for a one-logit reward model: "
                "per-subset accuracy, section scores with the official weights, overall mean.",
    model_kind="reward", options=RewardBenchOptions, runner="bench.reward_bench:run",
))
