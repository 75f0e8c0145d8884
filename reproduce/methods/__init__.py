"""Every method of the tables, registered by importing its module (one line per method)."""

from . import iterative_dpo, mutual_taught, offline_dpo, rlp, seam_filter, sppo  # noqa: F401  (registration)
from .registry import METHODS, MethodSpec, register

__all__ = ["METHODS", "MethodSpec", "register"]
