"""Answer normalisation shared by SEAM (near-duplicate checks) and RLP-SPG (the exact-answer judge).

Two answers that differ only in case, spacing, Unicode form or a trailing full stop say the
same thing; comparing normalised keys keeps such variants from counting as "worse" answers or as
separate equivalence classes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_SPACE = re.compile(r"\s+")


def normalise_answer(text: str, strip_prefixes: Sequence[str] = ()) -> str:
    """Case-folded NFKC text, whitespace collapsed, listed prefixes and a trailing '.' removed."""
    key = unicodedata.normalize("NFKC", text).strip()
    for prefix in strip_prefixes:
        if key.casefold().startswith(prefix.strip().casefold()):
            key = key[len(prefix.strip()):].strip()
    key = _SPACE.sub(" ", key.casefold()).strip()
    return key[:-1].rstrip() if key.endswith(".") else key
