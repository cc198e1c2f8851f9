"""Configuration files of the broker and the nodes (TOML), with environment overrides.

The keys in `ENV_KEYS` can be overridden by an environment variable GATEWAY_<KEY> (upper
case), so a container can keep one file and change the database URL or endpoint per
deployment. The others, above all the paths to keys, policies and schema, come from the
file only: whoever can set a container's environment must not be able to point it at
other trust roots. Relative paths in a file are relative to the file's folder.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar


class ConfigError(Exception):
    """A configuration file is missing a key, has an unknown one, or a bad value."""


ADAPTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "bank": (
        "identifier",
        "status",
        "balance_minor",
        "held_minor",
        "hold_expires_at_ms",
        "holder_name",
    ),
    "carrier": ("identifier", "status"),
}
"""The keys `[adapter_columns]` takes per role: the gateway names of the columns the action
handler needs (`nodes/actions/accounts.py`, `numbers.py`; a test keeps them equal)."""


@dataclass(frozen=True)
class BrokerConfig:
    node_id: str
    listen: str
    database: str
    pki_bundle: Path
    directory_folder: Path
    max_envelope_bytes: int = 4 * 1024 * 1024
    delivery_timeout_s: float = 10.0
    interactive_per_recipient: int = 4
    """Interactive deliveries (queries, PINGs) in flight to one recipient at most; more
    fail at once as undelivered, so a slow member holds at most this many threads."""
    audit_appends_per_minute: int = 300
    """Audit entries one sender may cause a minute by refused envelopes and audit reads
    (`gateway.broker.append_budget`)."""
    stop_payment_answer_s: int = 15 * 60
    """Answer deadline of a STOP_PAYMENT: the bank must have acted within this time."""
    action_answer_s: int = 24 * 3600
    """Answer deadline of every other action request."""
    deadline_check_s: float = 5.0
    outbox_lease_s: float = 60.0
    """How long a broker's claim on an outbox row holds; after it (the broker died),
    another broker delivers the row. Must exceed `delivery_timeout_s`."""
    ops_listen: str = ""
    """host:port of the plain-HTTP /healthz, /readyz and /metrics endpoint ("" = none)."""

    def __post_init__(self) -> None:
        if self.interactive_per_recipient < 1:
            raise ConfigError("interactive_per_recipient must be at least 1")
        if self.audit_appends_per_minute < 1:
            raise ConfigError("audit_appends_per_minute must be at least 1")
        if self.outbox_lease_s <= self.delivery_timeout_s:
            raise ConfigError(
                f"outbox_lease_s ({self.outbox_lease_s}) must be longer than "
                f"delivery_timeout_s ({self.delivery_timeout_s}): a lease covers one attempt"
            )


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    role: str
    listen: str
    broker_endpoint: str
    database: str
    pki_bundle: Path
    broker_id: str = "broker"
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
    filter_max_batch: int = 4096
    """Filter mode: the largest padded batch sent (police) or answered (bank, carrier)."""
    filter_eval_per_hour: int = 8192
    """Filter mode (bank, carrier): OPRF evaluations per querier per clock hour."""
    filter_eval_per_day: int = 32768
    """Filter mode (bank, carrier): OPRF evaluations per querier per UTC day."""
    filter_sync_s: float = 300.0
    """Filter mode (police): how often every responder's filter is synced; 0: only on query."""
    hold_sweep_s: float = 5.0
    """How often a bank or carrier releases holds and suspensions whose time is up."""
    alert_resend_s: float = 30.0
    """Bank or carrier: how often alerts the broker has not acknowledged are resent."""
    freeze_warning_hours: int = 7 * 24
    """Police: warn this long before a freeze expires (renew it before then)."""
    stop_payment_warning_hours: int = 6
    """Police: warn this long before a stop-payment expires (freeze before then)."""
    return_working_days: int = 3
    """Police: working days a bank has to complete a return of funds."""
    transactions_table: str = ""
    """Bank: its own ledger table (stop-payment checks, inquiries, returns); "" built-in."""
    transaction_columns: dict[str, str] = field(default_factory=dict)
    """Bank: gateway name -> column of transactions_table (txn_id, account, at_ms,
    amount_minor, counterparty)."""
    inquiry_columns: dict[str, str] = field(default_factory=dict)
    """Bank or carrier: more answer fields of an inquiry, each a column of adapter_table."""
    inquiry_fields: dict[str, str] = field(default_factory=dict)
    """Bank or carrier: requesting role -> the answer fields it may see, comma-separated."""
    holiday_calendar: Path | None = None
    """Police: TOML of holidays and adjusted working days; None: the shipped one."""
    ops_listen: str = ""
    """host:port of the plain-HTTP /healthz, /readyz and /metrics endpoint ("" = none)."""
    console_listen: str = ""
    """host:port of the staff web console (`gateway.console`; "" = off)."""
    console_secure_cookies: bool = False
    """Mark the console's cookies Secure: set it when a TLS reverse proxy serves the console."""
    console_idle_timeout_s: float = 900.0
    """A console session unused this long is closed; the user logs in again."""
    time_zone: str = "Asia/Shanghai"
    """The time zone the console shows times in (an IANA name); UTC shows on hover."""
    alert_region: str = ""
    """Bank or carrier: the GB/T 2260 code its alerts name unless told otherwise (checked
    at start against the police jurisdictions in the directory); "" none."""
    watchlist_listen: str = ""
    """Bank or carrier: loopback host:port or unix:PATH of the local Watchlist.Check
    gRPC service for the agency's own systems ("" = off)."""
    watchlist_advice: dict[str, str] = field(
        default_factory=lambda: {
            "bank": "refuse,enhanced_checks,warn_customer",
            "carrier": "refuse,enhanced_checks,warn_customer",
        }
    )
    """Police: checker role -> the advice levels whose entries it is shown, comma-separated;
    a role not named is shown none (`nodes.watchlist.police`)."""

    def __post_init__(self) -> None:
        size = self.filter_max_batch
        if not 64 <= size <= 8192 or size & (size - 1):
            raise ConfigError(
                f"filter_max_batch must be a power of two from 64 to 8192 (the broker "
                f"policy's size classes), not {size}"
            )
        if not 1 <= self.filter_eval_per_hour <= self.filter_eval_per_day:
            raise ConfigError(
                "filter_eval_per_hour and filter_eval_per_day need 1 <= per hour <= per day"
            )

    def node_policy(self) -> str:
        """The node's policy file in the signed bundle (`gateway.policy.bundle`)."""
        return f"node-{self.role}.cedar"


ENV_KEYS = frozenset(
    {
        "database",
        "listen",
        "broker_endpoint",
        "ops_listen",
        "console_listen",
        "console_secure_cookies",
        "console_idle_timeout_s",
        "time_zone",
        "call_timeout_s",
        "delivery_timeout_s",
        "directory_ttl_s",
        "match_workers",
        "watchlist_listen",
    }
)
"""Keys a GATEWAY_<KEY> environment variable may set: where to listen, what to dial,
which database, and tuning; never a path to a key, a policy, a schema or a calendar."""


BROKER_POLICY = "broker.cedar"
"""The broker's policy file in the signed bundle."""

_PATH_KEYS = {"pki_bundle", "directory_folder", "holiday_calendar"}


def _coerce(name: str, kind: Any, value: Any, base: Path) -> Any:
    text = str(kind)
    if name in _PATH_KEYS:
        path = Path(str(value))
        return path if path.is_absolute() else (base / path).resolve()
    if text == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise TypeError(name)
    if text == "int":
        if isinstance(value, bool | dict | list):
            raise TypeError(name)
        return int(value)
    if text == "float":
        if isinstance(value, bool | dict | list):
            raise TypeError(name)
        return float(value)
    if text == "str" and not isinstance(value, str):
        raise TypeError(name)
    if text.startswith("list") and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        raise TypeError(name)
    if text.startswith("dict") and not isinstance(value, dict):
        raise TypeError(name)
    if text.startswith(("list", "dict")):
        return value
    if name == "database" and "://" not in str(value):
        path = Path(str(value))
        return str(path if path.is_absolute() else (base / path).resolve())
    return value


T = TypeVar("T", BrokerConfig, NodeConfig)


def _from_environment(name: str, kind: str, text: str) -> Any:
    """The value of GATEWAY_<NAME>, typed as the file would type it, if NAME may be set so.

    Text keys take the variable as it is; the others read it as a TOML value (`true`,
    `30`, `2.5`), so `_coerce` checks it exactly as it checks the file's value; text
    that is no TOML value goes to `_coerce` as it is, which refuses it for a typed key.
    """
    variable = f"GATEWAY_{name.upper()}"
    if name not in ENV_KEYS:
        raise ConfigError(
            f"{variable} cannot be set from the environment; set {name} in the "
            "configuration file (only " + ", ".join(sorted(ENV_KEYS)) + " can be)"
        )
    if kind == "str":
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _unknown(names: list[str], known: list[str]) -> str:
    """'unknown keys a, b', with the nearest known key for each where there is one."""
    shown = []
    for name in names:
        near = difflib.get_close_matches(name, known, n=1)
        shown.append(f"{name} (did you mean {near[0]}?)" if near else name)
    return f"unknown keys {', '.join(shown)}"


def _check_tables(path: Path, data: dict[str, Any], known: set[str]) -> None:
    """Each [table] holds only its own keys, as strings.

    TOML puts every line after a `[table]` header into that table, so a top-level key
    uncommented below `[adapter_columns]` lands there; say so instead of ignoring it.
    """
    for table, value in data.items():
        if not isinstance(value, dict):
            continue
        if table not in known:
            continue  # reported as an unknown key
        misplaced = sorted(k for k in value if k in known)
        if misplaced:
            raise ConfigError(
                f"{path}: {', '.join(misplaced)} is under [{table}]; move it above the "
                f"[{table}] line (every key after a [table] line belongs to that table)"
            )
        bad = sorted(k for k, v in value.items() if not isinstance(v, str))
        if bad:
            raise ConfigError(f"{path}: [{table}] {', '.join(bad)} must be a quoted name")
    role = data.get("role")
    columns = data.get("adapter_columns")
    if isinstance(columns, dict) and isinstance(role, str) and role in ADAPTER_COLUMNS:
        unknown = sorted(set(columns) - set(ADAPTER_COLUMNS[role]))
        if unknown:
            raise ConfigError(
                f"{path}: [adapter_columns] {_unknown(unknown, list(ADAPTER_COLUMNS[role]))}; "
                f"a {role} maps {', '.join(ADAPTER_COLUMNS[role])}"
            )
    elif isinstance(columns, dict) and columns and role not in ADAPTER_COLUMNS:
        raise ConfigError(f"{path}: [adapter_columns] is for banks and carriers, not a {role}")


SIGNED_ONLY = ("policy", "schema")
"""Former keys naming policy files: an environment that still sets them is refused, not
ignored, so that whoever set one learns it has no effect."""


def load_config(cls: type[T], path: Path) -> T:
    """Read a TOML file into `cls`, applying GATEWAY_* environment overrides."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"configuration file {path} is a folder") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{path}: {_unknown(sorted(unknown), list(known))}")
    _check_tables(path, data, set(known))
    for name in SIGNED_ONLY:
        variable = f"GATEWAY_{name.upper()}"
        if variable in os.environ:
            raise ConfigError(
                f"{variable} cannot be set from the environment: policies and their schema "
                "load only from the signed bundle the directory lists (`gateway policy sign`)"
            )
    for name in known:
        env = os.environ.get(f"GATEWAY_{name.upper()}")
        if env is not None:
            data[name] = _from_environment(name, str(known[name].type), env)
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
