"""Every table of a node's database, imported in one place.

`NodeBase.metadata` knows a table only once its module is imported; the runtime and
the migration commands import this module so that they always see the whole schema, and
it registers the list with `gateway.migrate` (which, as a library part, cannot import
`nodes/`).
"""

from __future__ import annotations

from gateway.bulk_psi import offers
from gateway.db import NodeBase
from gateway.matching import eval_quota, filter_source, filter_store, index_store
from gateway.migrate import register_tables
from nodes import journal, records
from nodes.actions import accounts, holds, ledger, numbers, outcomes, police
from nodes.alerts import inbox, sender
from nodes.staff import accounts as staff_accounts
from nodes.staff import drafts, trail

TABLE_MODULES = (
    journal,
    records,
    holds,
    accounts,
    ledger,
    numbers,
    police,
    outcomes,
    index_store,
    eval_quota,
    filter_source,
    filter_store,
    offers,
    staff_accounts,
    trail,
    drafts,
    sender,
    inbox,
)
metadata = NodeBase.metadata
register_tables("node", TABLE_MODULES)
