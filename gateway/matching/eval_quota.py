"""The responder's per-querier OPRF evaluation quota, per hour and per day, in its database.

Filter mode lets the police test any number of identifiers against a filter they hold,
but only identifiers whose OPRF outputs the responder evaluated for them; this quota is
what bounds how much of the identifier space a querier can test (SECURITY.md works out
the arithmetic). Padded elements count: the responder cannot tell dummies apart. The
counts live in the node database, so a restart does not hand out a fresh allowance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

from sqlalchemy import BigInteger, Engine, String, Table, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.matching.errors import Problem, QueryRefused

__all__ = ["EvalQuota", "charge", "used"]

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS


class EvalQuotaRow(NodeBase):
    __tablename__ = "oprf_eval_quota"

    querier: Mapped[str] = mapped_column(String(128), primary_key=True)
    period_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[int] = mapped_column(BigInteger)


_ROWS = cast(Table, EvalQuotaRow.__table__)


@dataclass(frozen=True)
class EvalQuota:
    """Most elements one querier may have evaluated per clock hour and per UTC day."""

    per_hour: int
    per_day: int

    def __post_init__(self) -> None:
        if not 1 <= self.per_hour <= self.per_day:
            raise ValueError(
                "the OPRF evaluation quota needs 1 <= per_hour <= per_day, "
                f"not per_hour={self.per_hour}, per_day={self.per_day}"
            )


def charge(engine: Engine, querier: str, count: int, quota: EvalQuota, at_ms: int = 0) -> None:
    """Count `count` evaluations against `querier`, or QueryRefused (nothing counted).

    Both windows are charged in one transaction with conditional updates, so concurrent
    queries cannot together overshoot the quota, and a refusal in either counts nothing.
    """
    at_ms = at_ms or now_ms()
    windows = ((HOUR_MS, quota.per_hour, "hour"), (DAY_MS, quota.per_day, "day"))
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                for period, limit, name in windows:
                    start = at_ms - at_ms % period
                    key = and_(_ROWS.c.querier == querier, _ROWS.c.period_ms == period)
                    conn.execute(delete(_ROWS).where(key, _ROWS.c.window_start_ms != start))
                    if conn.execute(select(_ROWS.c.used).where(key)).first() is None:
                        conn.execute(
                            insert(_ROWS).values(
                                querier=querier, period_ms=period, window_start_ms=start, used=0
                            )
                        )
                    done = conn.execute(
                        update(_ROWS)
                        .where(key, _ROWS.c.used + count <= limit)
                        .values(used=_ROWS.c.used + count)
                    )
                    if done.rowcount != 1:
                        reset_min = (start + period - at_ms + 59_999) // 60_000
                        raise QueryRefused(
                            f"{count} more evaluations exceed your quota of {limit} per {name} "
                            f"at this responder; it resets in {reset_min} min",
                            Problem.FORBIDDEN,
                        )
            return
        except IntegrityError:
            # Another query created the window row first: charge again against it.
            if attempt:
                raise


def used(engine: Engine, querier: str, at_ms: int = 0) -> tuple[int, int]:
    """(evaluations this hour, evaluations today) for `querier`."""
    at_ms = at_ms or now_ms()
    out = []
    with engine.connect() as conn:
        for period in (HOUR_MS, DAY_MS):
            row = conn.execute(
                select(_ROWS.c.used).where(
                    _ROWS.c.querier == querier,
                    _ROWS.c.period_ms == period,
                    _ROWS.c.window_start_ms == at_ms - at_ms % period,
                )
            ).first()
            out.append(int(row.used) if row else 0)
    return out[0], out[1]
