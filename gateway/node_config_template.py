"""The commented example configuration `gateway node init` writes for each role."""

from __future__ import annotations

from pathlib import Path

_ROLE_NOTES = {
    "police": "# Police: issues queries and freeze requests; receives answers and receipts.",
    "bank": (
        "# Bank: answers match queries from its accounts and executes stop-payments and\n"
        "# freezes through its adapter. Point adapter_table/adapter_columns at your own\n"
        "# accounts table to use it instead of the built-in one."
    ),
    "carrier": ("# Carrier: answers match queries from its subscribers and suspends numbers."),
    "regulator": "# Regulator: reads and verifies the broker's audit log; sends nothing else.",
}

_RESPONDER_EXTRA = """
# Attributes a querier may see in a match label (never more than the policy allows).
label_attributes = ["record_id", "status", "opened_on"]

# Adapter: the table holding accounts (bank) or numbers (carrier). Leave empty to use
# the built-in table, which `gateway node ingest` fills from the CSV; name your own
# table to have actions change it instead, and map its columns in [adapter_columns]
# at the end of this file.
adapter_table = ""
"""

_ALERT_EXTRA = """
# Alerts (`gateway alert raise`): the GB/T 2260 region code your alerts name unless
# told otherwise, e.g. "310000" Shanghai; checked at start against the police
# jurisdictions in the signed directory. Empty: every alert names its region.
alert_region = ""
"""

_COLUMNS = {
    "bank": """
# How your accounts table's columns map to the gateway's names (with adapter_table).
# Keep this table last: TOML puts every line after a [table] line into that table.
# [adapter_columns]
# identifier = "account_no"         # the account number, a text column
# status = "status"                 # text: 'active' | 'frozen' | 'closed'
# balance_minor = "balance_fen"     # integer, in minor units
# held_minor = "held_fen"           # integer, in minor units
# hold_expires_at_ms = "hold_expiry"  # integer, Unix milliseconds
# holder_name = "cust_name"         # text: a stop-payment's stated name is checked on it
""",
    "carrier": """
# How your subscribers table's columns map to the gateway's names (with adapter_table).
# Keep this table last: TOML puts every line after a [table] line into that table.
# [adapter_columns]
# identifier = "msisdn"             # the number in E.164 (+8613812345678), a text column
# status = "state"                  # text: 'active' | 'suspended'
""",
}

_LEDGER_KEY = """
# The ledger a stop-payment's transaction is checked in, inquiries list and returns post
# to: empty for the built-in account_transactions table, or your own table, its columns
# mapped in [transaction_columns] at the end of this file.
transactions_table = ""
"""

_LEDGER_COLUMNS = """
# How your ledger's columns map to the gateway's names (with transactions_table).
# [transaction_columns]
# txn_id = "posting_no"             # text, unique
# account = "acct_no"               # text: the account number
# at_ms = "posted_ms"               # integer, Unix milliseconds
# amount_minor = "fen"              # integer, minor units: + credit, - debit
# counterparty = "other_acct"       # text: the other account
"""

_INQUIRY_EXTRA = """
# Inquiries (查询): the answer holds the mapped columns above (not the identifier) and,
# at a bank, the account's transactions in the window. More fields from other columns
# of your own adapter_table, and which fields each requesting role sees (default: the
# police see every field). Keep these tables last, with [adapter_columns].
# [inquiry_columns]
# id_number = "cust_id"
# opened_on = "open_date"
# [inquiry_fields]
# police = "holder_name,status,balance_minor,held_minor,transactions"
"""

_POLICE_EXTRA = """
# Fund control: warn this long before a freeze or a stop-payment expires, and give a
# bank this many working days to complete a return of funds, counted on the holiday
# calendar (empty: the shipped one, the State Council's schedule for 2026).
# freeze_warning_hours = 168
# stop_payment_warning_hours = 6
# return_working_days = 3
# holiday_calendar = "holidays.toml"
# Watchlist: the advice levels whose entries each checking role is shown (an entry at
# another level answers "not listed" to that role), e.g. carriers only "refuse" ones:
# watchlist_advice = { bank = "refuse,enhanced_checks,warn_customer", carrier = "refuse" }
"""

_MATCH_EXTRA = """
# Targeted matching. Bucket bits must be the same at police and responders; size them
# from the largest responder's record count, round(log2(records / 16)): 16 at 1M
# records, 19 at 10M, 23 at 100M. A query carries at most match_max_batch identifiers;
# match_workers processes build the index (0: one per core). Defaults shown.
# match_bucket_bits = 16
# match_max_batch = 1000
# match_workers = 0
"""


CONSOLE_DEFAULT = "127.0.0.1:8180"
"""Where a new node's staff console listens: loopback, for a reverse proxy in front."""


def render(
    *,
    node: str,
    role: str,
    listen: str,
    broker: str,
    bundle: Path,
    database: str,
    console_listen: str = CONSOLE_DEFAULT,
) -> str:
    """A TOML file for one node; keys in `gateway.config.ENV_KEYS` take GATEWAY_<KEY>."""
    extra = _RESPONDER_EXTRA if role in ("bank", "carrier") else ""
    extra += _MATCH_EXTRA if role in ("police", "bank", "carrier") else ""
    extra += _LEDGER_KEY if role == "bank" else ""
    extra += _POLICE_EXTRA if role == "police" else ""
    extra += _COLUMNS.get(role, "")
    extra += _LEDGER_COLUMNS if role == "bank" else ""
    extra += _INQUIRY_EXTRA if role in ("bank", "carrier") else ""
    extra = _ALERT_EXTRA + extra if role in ("bank", "carrier") else extra
    return f"""{_ROLE_NOTES.get(role, "")}
# Where to listen and dial, the database and tuning keys can be overridden by an
# environment variable GATEWAY_<KEY> (never paths to keys or policies), e.g.
# GATEWAY_DATABASE=postgresql+psycopg://user@db/bank.

# This node's id and role, as issued by `gateway pki issue`.
node_id = "{node}"
role = "{role}"

# Where this node's gRPC server listens (mTLS), and where the broker is.
listen = "{listen}"
broker_endpoint = "{broker}"
broker_id = "broker"

# The node's bundle from `gateway pki issue`: certificate, keys, CA, directory key.
pki_bundle = "{bundle}"

# The node's own database: a SQLite path or any SQLAlchemy URL.
database = "{database}"

# Default region for phone numbers written without a country code.
default_region = "CN"

# Deadline for every call to the broker, in seconds.
call_timeout_s = 30.0

# How long the signed directory fetched from the broker is used before it is fetched again.
directory_ttl_s = 30.0

# Plain-HTTP /healthz, /readyz and Prometheus /metrics for operations (empty: off); keep it
# on loopback or an operations network, e.g. "127.0.0.1:9102".
ops_listen = ""

# The staff web console (officers, approvers, auditors, admins log in here; empty: off).
# Keep it on loopback and publish it through the agency's TLS reverse proxy; behind TLS
# set console_secure_cookies to true so the browser sends its session cookie over HTTPS only.
console_listen = "{console_listen}"
console_secure_cookies = false
# An unused console session closes after this many seconds.
console_idle_timeout_s = 900
# Times in the console are shown in this zone (UTC on hover).
time_zone = "Asia/Shanghai"
{extra}"""
