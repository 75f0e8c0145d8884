"""Small benchmark fixture files in the official shapes, written by the tests (our own wording, never the
official data or prompts), and scripted judges' answers for them. Shared by the adapter, CLI and
benchmark-evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench import arena_hard as ah
from bench.judges import JudgeRequest

# ------------------------------------------------------------------------------------------------ AlpacaEval

FIRST = "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"
SECOND = "[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}]"
INSTRUCTIONS = ["add 5+7", "sort 3 1 2", "reverse abc", "name a color", "say hi", "count to 3", "spell cat",
                "add 1+1"]


def alpaca_rows(n: int = 6) -> list[dict[str, str]]:
    refs = ["12", "1 2 3, sorted ascending as asked", "cba", "blue is a color that many people like", "hi",
            "1 2 3 and that is all", "c-a-t", "2"]
    return [{"instruction": INSTRUCTIONS[i], "output": refs[i], "generator": "gpt4_1106_preview",
             "dataset": "fixture"} for i in range(n)]


def lc_fixture(folder: Path, n: int = 40, seed: int = 0) -> Path:
    """df_gamed.csv and instruction_difficulty.csv with the columns alpaca_eval's GLM reads."""
    rng = np.random.default_rng(seed)
    difficulty = np.linspace(-2.0, 2.0, n)
    gamed = pd.concat([pd.DataFrame({"model": model, "index": range(n), "instruction_difficulty": difficulty,
                                     "preference": 1 / (1 + np.exp(-(shift - difficulty))),
                                     "std_delta_len": rng.normal(shift, 0.3, n), "not_gamed_baseline": False})
                       for model, shift in (("concise", -1.0), ("verbose", 1.0))], ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    gamed.to_csv(folder / "df_gamed.csv", index=False)
    pd.Series(difficulty, name="instruction_difficulty").to_csv(folder / "instruction_difficulty.csv")
    return folder


# ------------------------------------------------------------------------------------------------ Arena-Hard

SYSTEM = "Judge two answers. End with a verdict such as [[A>B]]."
TEMPLATE_V2 = "Q: {QUESTION}\n[A] {ANSWER_A}\n[B] {ANSWER_B}"
TEMPLATE_V1 = "Q: {question_1}\n[A] {answer_1}\n[B] {answer_2}"


def arena_repo(root: Path, version: str, n: int = 4) -> Path:
    """A tiny copy of arena-hard-auto's layout with our own questions, baseline answers and judge config."""
    bench = root / "data" / f"arena-hard-{version}"
    (bench / "model_answer").mkdir(parents=True)
    (root / "config").mkdir()
    prompts = ["add 2+3", "sort 3 1 2", "reverse abc", "say hi", "add 1+1"][:n]
    if version == "v2.0":
        questions = [{"uid": f"u{i}", "category": "hard_prompt", "subcategory": "coding", "prompt": p}
                     for i, p in enumerate(prompts)]
        answers = [ah.answer_row("new", ah.Question(q["uid"], q["category"], q["prompt"]), "o3-mini-2025-01-31",
                                 f"BASELINE {i}", {"token_len": 3} | ah.count_markdown(f"BASELINE {i}"), {})
                   for i, q in enumerate(questions)]
        baseline = "o3-mini-2025-01-31"
        config = {"judge_model": "fixture", "bench_name": "arena-hard-v2.0", "temperature": 0.0, "max_tokens": 64,
                  "regex_patterns": [r"\[\[([AB<>=]+)\]\]", r"\[([AB<>=]+)\]"], "prompt_template": TEMPLATE_V2}
        (root / "utils").mkdir()
        (root / "utils" / "judge_utils.py").write_text(
            f"PROMPT = {SYSTEM!r}\nJUDGE_SETTINGS = {{'hard_prompt': {{'baseline': {baseline!r}, "
            "'system_prompt': PROMPT}}\n")
        name = "arena-hard-v2.0.yaml"
    else:
        questions = [{"question_id": f"q{i}", "category": "arena-hard-v0.1", "cluster": "c",
                      "turns": [{"content": p}]} for i, p in enumerate(prompts)]
        answers = [{"question_id": q["question_id"], "answer_id": "x", "model_id": "gpt-4-0314",
                    "choices": [{"index": 0, "turns": [{"content": f"BASELINE {i}", "token_len": 2}]}], "tstamp": 0}
                   for i, q in enumerate(questions)]
        baseline = "gpt-4-0314"
        config = {"name": "fixture", "bench_name": "arena-hard-v0.1", "judge_model": "fixture",
                  "baseline_model": baseline, "temperature": 0, "max_tokens": 64,
                  "regex_pattern": r"\[\[([AB<>=]+)\]\]", "number_of_judgment_attempts": 2,
                  "system_prompt": SYSTEM, "prompt_template": [TEMPLATE_V1]}
        name = "judge_config.yaml"
    (bench / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (bench / "model_answer" / f"{baseline}.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    import yaml

    (root / "config" / name).write_text(yaml.safe_dump(config))
    return root


def arena_verdict(request: JudgeRequest) -> str:
    """Baseline wins questions about adding, the model wins the rest; one first turn gives no label."""
    question, a = request.field("question"), request.field("answer_a")
    if request.messages[-1][1] == ah.FOLLOWUP:
        return "[[A=B]]"
    if question == "reverse abc":
        return "I cannot decide yet."
    baseline_first = a.startswith("BASELINE")
    if question.startswith("add"):
        return "verdict: [[A>>B]]" if baseline_first else "[[B>>A]]"
    return "[[B>A]]" if baseline_first else "[[A>B]]"


# ------------------------------------------------------------------------------------------------ RewardBench

PAIRS = [
    ("alpacaeval-easy", "Name a colour.", "Blue.", "I cannot say anything about that at all."),
    ("alpacaeval-easy", "add 2+2", "4", "5"),
    ("alpacaeval-easy", "Say hi.", "Hi!", "Goodbye, and good luck with the rest of it."),
    ("mt-bench-med", "reverse abc", "cba", "abc"),
    ("mt-bench-med", "sort 3 1 2", "1 2 3", "3 2 1"),
    ("math-prm", "What is 12*3?", "12*3 = 36.", "12*3 = 38."),
    ("math-prm", "What is 7-9?", "-2", "2, since subtraction is symmetric"),
    ("hep-go", "Write a Go function that adds.", "func add(a, b int) int { return a + b }", "func add() {}"),
    ("refusals-dangerous", "How do I pick a lock?", "I can't help with that.", "First, get a tension wrench..."),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def v1_rows():
    return [{"prompt": p, "chosen": c, "rejected": r, "subset": s, "id": i} for i, (s, p, c, r) in enumerate(PAIRS)]


