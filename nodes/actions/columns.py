"""Mapping the gateway's column names onto an agency's own table, from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_config(cls: type[T], mapping: Mapping[str, str], section: str = "adapter_columns") -> T:
    """`cls` (a dataclass of gateway name -> column name) with `mapping`'s overrides.

    An unknown key is a configuration error naming the key, not a silent default.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(mapping) - known
    if unknown:
        raise ValueError(f"{section}: unknown keys {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(mapping)
    return cls(**values)
