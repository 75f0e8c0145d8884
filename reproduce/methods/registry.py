"""The method registry: every row of the tables is a registered method.

A method is a runner class (``MutualTaught`` or a subclass that overrides one E-step decision) plus
the config changes that define it. Adding a baseline is one module that calls ``register`` and one
import line in ``__init__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt.loop import MutualTaught
from mt.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    name: str
    runner: type[MutualTaught]
    description: str
    citation: str
    overrides: tuple[str, ...] = ()  # config changes that make the method what it is
    options: dict = field(default_factory=dict)  # defaults for cfg.method, checked by the runner
    notes: str = ""  # substitutions on the gold world, stated in every result
    starts_at_initial: bool = True  # its iteration-0 models are pi_0 and r_0 (the tables' "initial" row)


METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    return METHODS.register(spec.name)(spec)
