"""Benchmark answers are saved per chunk: a killed run generates only the missing ones."""

from __future__ import annotations

from bench.answers import generate_answers
from bench.registry import BenchRequest
from mt.generate import Sampling
from mt.progress import QUIET


def test_a_killed_generation_resumes_with_the_missing_answers(tiny_models, tmp_path):
    policy, _ = tiny_models
    request = BenchRequest(model=str(policy), out=tmp_path, batch_size=2)
    prompts = [(f"q{i}", [{"role": "user", "content": f"add {i}+{i}"}]) for i in range(5)]
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=6)
    progress = tmp_path / "progress.jsonl"

    first, stats = generate_answers(request, prompts, sampling, progress, "answers", QUIET, chunk=2)
    assert stats == {**stats, "reused": 0, "generated": 5} and set(first) == {k for k, _ in prompts}
    lines = progress.read_text().splitlines()
    assert len(lines) == 5
    progress.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed mid-write

    again, stats = generate_answers(request, prompts, sampling, progress, "answers", QUIET, chunk=2)
    assert stats["reused"] == 2 and stats["generated"] == 3
    assert again == first  # greedy: the regenerated answers are the same
    _, stats = generate_answers(request, prompts, sampling, progress, "answers", QUIET, chunk=2)
    assert stats["generated"] == 0  # the answers appended after the torn line are readable

    other = Sampling(n=1, temperature=0.0, max_new_tokens=3)  # other settings never reuse these answers
    _, stats = generate_answers(request, prompts, other, progress, "answers", QUIET)
    assert stats["reused"] == 0 and stats["generated"] == 5
