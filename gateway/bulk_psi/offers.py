"""The sets a node offers for bulk PSI, kept in its own database.

Deny by default: a node with no offer takes part in no bulk PSI, whatever its Cedar policy
allows. An offer names an attribute filter over the node's records (for example a
carrier's subscribers with flag=flagged), so the querier asks for a set by name and
never chooses which of the responder's records are compared. Managed with
`gateway psi-offers add|list|remove`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sqlalchemy import BigInteger, Engine, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.bulk_psi.plan import DEFAULT_MAX_SET_SIZE
from gateway.bulk_psi.responder import Offer
from gateway.bulk_psi.wire import check_selection, check_set_name
from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.identifiers import IdentifierKind


class PsiOfferRow(NodeBase):
    __tablename__ = "bulk_psi_offers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    where: Mapped[str] = mapped_column(Text, default="{}")
    """JSON object: attribute values a record must have to be in the set."""
    max_set_size: Mapped[int] = mapped_column(BigInteger, default=DEFAULT_MAX_SET_SIZE)
    roles: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of the roles that may ask; empty: any role the node policy admits."""
    cardinality_only: Mapped[int] = mapped_column(Integer, default=0)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    def offer(self) -> Offer:
        return Offer(
            name=self.name,
            kind=IdentifierKind(self.kind),
            where=json.loads(self.where),
            max_set_size=self.max_set_size,
            roles=frozenset(json.loads(self.roles)),
            cardinality_only=bool(self.cardinality_only),
        )


def save_offer(
    engine: Engine,
    name: str,
    kind: IdentifierKind,
    where: Mapping[str, str],
    *,
    max_set_size: int = DEFAULT_MAX_SET_SIZE,
    roles: Iterable[str] = (),
    cardinality_only: bool = False,
) -> Offer:
    """Add or replace an offer."""
    if max_set_size < 1:
        raise ValueError("max_set_size must be at least 1")
    row = PsiOfferRow(
        name=check_set_name(name),
        kind=kind.value,
        where=json.dumps(check_selection(where), sort_keys=True),
        max_set_size=max_set_size,
        roles=json.dumps(sorted(set(roles))),
        cardinality_only=int(cardinality_only),
        updated_at_ms=now_ms(),
    )
    with Session(engine) as session, session.begin():
        session.merge(row)
    return row.offer()


def find_offer(engine: Engine, name: str) -> Offer | None:
    with Session(engine) as session:
        row = session.get(PsiOfferRow, name)
        return row.offer() if row is not None else None


def list_offers(engine: Engine) -> list[Offer]:
    with Session(engine) as session:
        return [
            row.offer() for row in session.scalars(select(PsiOfferRow).order_by(PsiOfferRow.name))
        ]


def remove_offer(engine: Engine, name: str) -> bool:
    with Session(engine) as session, session.begin():
        row = session.get(PsiOfferRow, name)
        if row is None:
            return False
        session.delete(row)
        return True
