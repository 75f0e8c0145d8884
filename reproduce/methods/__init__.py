"""Every method of the tables, registered by importing its module (one line per method)."""

from . import (  # noqa: F401  (registration)
    iterative_dpo,
    meta_rewarding,
    mutual_taught,
    offline_dpo,
    rlp,
    seam_filter,
    sppo,
)
from .registry import METHODS, MethodSpec, register

__all__ = ["METHODS", "MethodSpec", "register"]
