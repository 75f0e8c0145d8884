"""Typed option sections: the generic machinery under every config, method option and benchmark option.

A section is a dataclass whose fields carry their help text and their allowed values in metadata
(``option(...)``: ``choices``, or the bounds ``gt``/``ge``/``lt``/``le``). Plain tables (TOML, ``--set``
overrides, a recipe's settings) are merged into it key by key, coerced to the declared types and checked;
every mistake is one ``ConfigError`` line naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

import tomllib

from .errors import UserError


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names the key and what was expected."""


def option(default: Any = dataclasses.MISSING, *, help: str, reconstructed: bool = False, choices=None,
       factory=None, gt=None, ge=None, lt=None, le=None):
    """A field whose metadata carries its help and its allowed values (``choices``, or bounds gt/ge/lt/le)."""
    meta = {"help": help, "reconstructed": reconstructed}
    if choices is not None:
        meta["choices"] = tuple(choices)
    meta.update({k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None})
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "lt": ("<", operator.lt),
           "le": ("<=", operator.le)}


def range_text(metadata: Any) -> str | None:
    """A field's range as errors and show-config print it: '> 0', '>= 1', 'in [0, 1)'; None if unbounded."""
    low = next((k for k in ("gt", "ge") if k in metadata), None)
    high = next((k for k in ("lt", "le") if k in metadata), None)
    if low and high:
        left, right = "(" if low == "gt" else "[", ")" if high == "lt" else "]"
        return f"in {left}{metadata[low]}, {metadata[high]}{right}"
    if low or high:
        return f"{_BOUNDS[low or high][0]} {metadata[low or high]}"
    return None


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every field against its declared choices and range (None passes: it means 'not set')."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, key + ".")
        elif "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, f.metadata['choices']))}")
        elif value is not None and not all(test(value, f.metadata[k]) for k, (_, test) in _BOUNDS.items()
                                           if k in f.metadata):  # written so that NaN fails too
            raise ConfigError(f"{key}={value!r}: expected {range_text(f.metadata)}")


def coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() == "none" and type(None) in args):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif not isinstance(value, list):
            value = [value]
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")


def merge(obj: Any, data: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r}; known under {prefix or 'the top level'}: "
                              f"{', '.join(sorted(names))}")
        current = getattr(obj, key)
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a table of settings, got {value!r}")
            _deep_update(current, value)
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full}: expected a table of settings, got {value!r}")
            merge(current, value, full + ".")
        else:
            setattr(obj, key, coerce(value, hints[key], full))


def _deep_update(table: dict[str, Any], layer: dict[str, Any]) -> None:
    """Merge a later layer into a free-form table key by key, so ``--set bench.x.limit=5`` keeps ``bench.x.data``."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            _deep_update(table[key], value)
        else:
            table[key] = value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value); the value is read as TOML when it parses, else as a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def as_table(keys: list[str], value: Any) -> dict[str, Any]:
    """``(["a", "b"], v)`` -> ``{"a": {"b": v}}``: an override as the table a TOML file would hold."""
    nested: dict[str, Any] = {keys[-1]: value}
    for k in reversed(keys[:-1]):
        nested = {k: nested}
    return nested


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: {e}") from None


def load_section(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """A typed section from a plain table, each field checked, e.g. a method's options from ``cfg.method``."""
    section = cls()
    merge(section, data, prefix)
    check_fields(section, prefix)
    return section


def describe(cfg: Any, prefix: str = "") -> list[tuple[str, Any, str, bool]]:
    """Rows (key, value, help, reconstructed) for printing a resolved config."""
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, f"{prefix}{f.name}."))
        else:
            allowed = range_text(f.metadata)
            note = f.metadata.get("help", "") + (f" Allowed values: {allowed}." if allowed else "")
            rows.append((f"{prefix}{f.name}", value, note, f.metadata.get("reconstructed", False)))
    return rows
