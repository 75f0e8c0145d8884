"""The method registry: every row of the tables is a registered method.

A method is a set of parts (``mt.method.Method``: who labels, which pairs, how the policy and the
reward model are updated) plus the config changes that define it. Adding a baseline is one module
that calls ``register`` and one import line in ``__init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mt.config import MTConfig, load_section
from mt.method import MUTUAL_TAUGHT, Method
from mt.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    citation: str
    build: Callable[[Any], Method] = lambda options: MUTUAL_TAUGHT  # options -> the method's parts
    overrides: tuple[str, ...] = ()  # config changes that make the method what it is
    options: type | None = None  # the dataclass of the method's own options (``[method]`` in a config)
    option_values: dict = field(default_factory=dict)  # option values that define this method
    notes: str = ""  # substitutions on the gold world, stated in every result
    starts_at_initial: bool = True  # its iteration-0 models are pi_0 and r_0 (the tables' "initial" row)
    needs_gold: bool = False  # its parts read the environment's gold reward (the gold world only)

    def parse_options(self, cfg: MTConfig) -> Any:
        """The method's options from ``cfg.method``, typed and checked (an unknown key is an error)."""
        if self.options is None:
            if cfg.method:
                raise_unknown(self.name, cfg.method)
            return None
        return load_section(self.options, cfg.method, "method.")

    def method(self, cfg: MTConfig) -> Method:
        """The method's parts for ``cfg``; options that check each other (``check()``) are checked first."""
        options = self.parse_options(cfg)
        if hasattr(options, "check"):
            options.check()
        return self.build(options)

    def differs_by(self) -> list[str]:
        """What sets it apart from Mutual-Taught: its config changes and the parts it swaps."""
        parts = self.build(self.options(**self.option_values) if self.options else None)
        swapped = [f.name for f in dataclasses.fields(Method) if getattr(parts, f.name) != getattr(MUTUAL_TAUGHT, f.name)]
        return [*self.overrides, *(f"method.{k}={v}" for k, v in self.option_values.items()),
                *(f"{p} part" for p in swapped)]


def raise_unknown(name: str, options: dict) -> None:
    from mt.config import ConfigError

    raise ConfigError(f"method {name!r} takes no [method] options; got {', '.join(sorted(options))}")


METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    return METHODS.register(spec.name)(spec)
