"""Configuration files of the broker and the nodes (TOML), with environment overrides.

Every key can be overridden by an environment variable GATEWAY_<KEY> (upper case), so a
container can keep one file and change the database URL or endpoint per deployment.
Relative paths in a file are relative to the file's folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

REPO_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class ConfigError(Exception):
    """A configuration file is missing a key, has an unknown one, or a bad value."""


@dataclass(frozen=True)
class BrokerConfig:
    node_id: str
    listen: str
    database: str
    pki_bundle: Path
    directory_folder: Path
    policy: Path = REPO_POLICIES / "broker.cedar"
    schema: Path = REPO_POLICIES / "schema.cedarschema"
    max_envelope_bytes: int = 4 * 1024 * 1024
    delivery_timeout_s: float = 10.0
    stop_payment_answer_s: int = 15 * 60
    """Answer deadline of a STOP_PAYMENT: the bank must have acted within this time."""
    action_answer_s: int = 24 * 3600
    """Answer deadline of every other action request."""
    deadline_check_s: float = 5.0
    ops_listen: str = ""
    """host:port of the plain-HTTP /healthz, /readyz and /metrics endpoint ("" = none)."""


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    role: str
    listen: str
    broker_endpoint: str
    database: str
    pki_bundle: Path
    broker_id: str = "broker"
    policy: Path | None = None
    schema: Path = REPO_POLICIES / "schema.cedarschema"
    default_region: str = "CN"
    label_attributes: list[str] = field(default_factory=list)
    adapter_table: str = ""
    adapter_columns: dict[str, str] = field(default_factory=dict)
    call_timeout_s: float = 30.0
    directory_ttl_s: float = 30.0
    """How long the node uses the signed directory it fetched before fetching it again."""
    match_bucket_bits: int = 16
    """Targeted matching: bucket size of the index (responder) and of queries (police)."""
    match_max_batch: int = 1000
    """Targeted matching: most identifiers in one query, sent (police) or answered."""
    match_workers: int = 0
    """Targeted matching: processes that build the index; 0 means one per core."""
    hold_sweep_s: float = 5.0
    """How often a bank or carrier releases holds and suspensions whose time is up."""

    def node_policy(self) -> Path:
        return self.policy or (REPO_POLICIES / f"node-{self.role}.cedar")


_PATH_KEYS = {"pki_bundle", "directory_folder", "policy", "schema"}


def _coerce(name: str, kind: Any, value: Any, base: Path) -> Any:
    text = str(kind)
    if name in _PATH_KEYS:
        path = Path(str(value))
        return path if path.is_absolute() else (base / path).resolve()
    if text == "int":
        return int(value)
    if text == "float":
        return float(value)
    if name == "database" and "://" not in str(value):
        path = Path(str(value))
        return str(path if path.is_absolute() else (base / path).resolve())
    return value


T = TypeVar("T", BrokerConfig, NodeConfig)


def load_config(cls: type[T], path: Path) -> T:
    """Read a TOML file into `cls`, applying GATEWAY_* environment overrides."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    for name in known:
        env = os.environ.get(f"GATEWAY_{name.upper()}")
        if env is not None:
            data[name] = env
    values: dict[str, Any] = {}
    for name, value in data.items():
        try:
            values[name] = _coerce(name, known[name].type, value, path.parent)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: key {name} has a bad value") from exc
    try:
        return cls(**values)
    except TypeError as exc:
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in values and f.default is MISSING and f.default_factory is MISSING
        ]
        raise ConfigError(f"{path}: missing keys {', '.join(missing) or '?'}") from exc
