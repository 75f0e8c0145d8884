"""AlpacaEval 2's numbers from annotations: alpaca_eval's own win rate and length-controlled GLM.

An annotation is one judged instruction: ``{instruction, output_1 (the reference), output_2 (the
model's), generator_1, generator_2, annotator, preference, example_index}``, preference in [1, 2]
(1.5 a draw), ``example_index`` the instruction's position among the 805, by which the LC model
looks its difficulty up. Nothing is reimplemented: the functions below feed alpaca_eval's
``get_winrate`` and ``get_length_controlled_winrate``, and only point the latter's two hub files
(``df_gamed.csv``, ``instruction_difficulty.csv``) at a local folder.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mt.records import InputError

LC_FILES = ("df_gamed.csv", "instruction_difficulty.csv")  # hub files the LC code downloads
LC_SPLITS = 5  # the GLM's GroupKFold folds: fewer annotations cannot be fitted
ANNOTATION_COLUMNS = ("instruction", "output_1", "output_2", "generator_1", "generator_2", "annotator", "preference")


def load_alpaca_eval():
    """Import alpaca_eval lazily (seconds), undoing its import-time switch of the root logger to INFO."""
    root = logging.getLogger()
    level = root.level
    try:
        import alpaca_eval.completion_parsers  # noqa: F401
        import alpaca_eval.metrics.glm_winrate  # noqa: F401
    except ImportError as e:
        raise ImportError("the alpaca-eval benchmark needs the alpaca-eval package: pip install 'alpaca-eval==0.6.6'") from e
    finally:
        root.setLevel(level)
    import alpaca_eval

    return alpaca_eval


def plain(value: Any) -> Any:
    """numpy scalars as Python numbers, NaN as None (results are strict JSON)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def win_rate(annotations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """alpaca_eval's get_winrate: mean preference for output_2, draws counted as half."""
    metrics = load_alpaca_eval().metrics.get_winrate([{"preference": a["preference"]} for a in annotations])
    return {k: plain(v) for k, v in metrics.items()}


def annotation_frame(annotations: Sequence[dict[str, Any]]):
    """The frame alpaca_eval's GLM reads; its index is each example's position, which it maps to difficulty."""
    import pandas as pd

    return pd.DataFrame([{c: a[c] for c in ANNOTATION_COLUMNS} for a in annotations],
                        index=[a["example_index"] for a in annotations])


@contextmanager
def _hub_files(resolve: Callable[[str], Any]) -> Iterator[None]:
    """Point glm_winrate's hub download at local files (it has no path argument of its own)."""
    glm = load_alpaca_eval().metrics.glm_winrate
    original = glm.hf_hub_download
    glm.hf_hub_download = lambda *, filename, **_: resolve(filename)
    try:
        yield
    finally:
        glm.hf_hub_download = original


def _glm(annotations: Sequence[dict[str, Any]], glm_name: str) -> dict[str, Any]:
    import sklearn

    glm = load_alpaca_eval().metrics.glm_winrate
    # It switches sklearn's metadata routing on globally (scoped to here), and sklearn 1.9 warns about the
    # LogisticRegressionCV arguments it passes: the pin below 1.10 is what keeps those arguments meaning the same.
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        metrics = glm.get_length_controlled_winrate(annotation_frame(annotations), glm_name=glm_name,
                                                    save_weights_dir=None, is_add_glm_preference_inplace=False)
    return {"lc_win_rate": plain(metrics["length_controlled_winrate"]),
            "lc_standard_error": plain(metrics["lc_standard_error"])}


def lc_win_rate(annotations: Sequence[dict[str, Any]], lc_dir: str | Path) -> dict[str, Any]:
    """The official LC win rate (alpaca_eval's ``length_controlled_v1``) with its hub files read from lc_dir."""
    import pandas as pd

    lc_dir = Path(lc_dir)
    gamed = pd.read_csv(lc_dir / LC_FILES[0])
    known = set(gamed.drop_duplicates("index").index)  # the labels glm_winrate looks difficulty up by
    unknown = sorted({a["example_index"] for a in annotations} - known)
    if unknown:
        raise InputError(f"{lc_dir / LC_FILES[0]}: no instruction difficulty for example index {unknown[0]} "
                         f"({len(unknown)} in all); the official LC needs the 805 instructions in their order")
    with _hub_files(lambda filename: str(lc_dir / filename)):
        return _glm(annotations, "length_controlled_v1")


def lc_win_rate_without_difficulty(annotations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """alpaca_eval's ``length_controlled_minimal`` GLM: length term only, no difficulty, no gamed baselines.

    Both missing terms come from df_gamed.csv; the official code still reads that file to look difficulty
    up, so it is handed a stand-in whose difficulty column the minimal formula never uses. Not the official LC.
    """
    if len(annotations) < LC_SPLITS:
        return {"lc_win_rate_no_difficulty": None, "lc_standard_error": None}
    size = max(a["example_index"] for a in annotations) + 1
    stand_in = "model,index,instruction_difficulty\n" + "".join(f"none,{i},0.0\n" for i in range(size))
    with _hub_files(lambda filename: io.StringIO(stand_in)):
        metrics = _glm(annotations, "length_controlled_minimal")
    return {"lc_win_rate_no_difficulty": metrics["lc_win_rate"], "lc_standard_error": metrics["lc_standard_error"]}


def score(annotations: Sequence[dict[str, Any]], lc_dir: Path | None) -> tuple[dict[str, Any], bool, str]:
    """(scores, official, note): the win rate plus the official LC when its files are given, else the labelled
    no-difficulty variant."""
    scores = win_rate(annotations)
    scores["n"] = len(annotations)
    if lc_dir is not None:
        scores.update(lc_win_rate(annotations, lc_dir))
        return scores, True, f"official LC win rate (length_controlled_v1) with {Path(lc_dir) / LC_FILES[0]}"
    scores.update(lc_win_rate_without_difficulty(annotations))
    note = (f"{LC_FILES[0]} not found (--option lc_files=DIR): lc_win_rate_no_difficulty is alpaca_eval's "
            f"length_controlled_minimal GLM, NOT the official LC win rate")
    return scores, False, note
