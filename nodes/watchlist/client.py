"""`WatchlistClient`: a bank's or carrier's check of identifiers against the police watchlist.

    from nodes.runtime import open_node
    from nodes.watchlist.client import WatchlistClient

    client = WatchlistClient(open_node(config))
    result = client.check("id_card", "11010519491231002X")
    if isinstance(result, Listed) and result.advice is Advice.REFUSE: ...

Each check travels through the broker as a WATCHLIST_CHECK: the identifier blinded
(OPRF, RFC 9497) for the police node's key from the signed directory, sealed to the
police node. The answer is used only once its batch proof verifies under that key, so
a police node (or anyone) answering under another key is refused with `WrongKey`.

Concurrent checks (a payment system's threads) are gathered into one blinded batch:
the first caller waits `window_s` for others, then sends them all in one message. One
batch travels at a time while the next one gathers behind it, so under load each
message carries more checks and the broker, the police node and the proofs are paid per
batch, not per check. Only a batch out for longer than `stall_s` (a slow answer) lets
another leave beside it, up to `in_flight` at once: one slow answer does not hold every
payment behind it. Nothing is cached: every check is a fresh evaluation by the police
node, so the node holds no table of what it learnt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Final

import grpc

from gateway.envelope.build import Draft, now_ms
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.kinds import Kind
from gateway.matching.errors import MatchError
from gateway.matching.querier import KeyMismatch, PendingQuery
from gateway.matching.wire import QUERY_TYPE
from gateway.watchlist import CheckResult, result_of
from nodes.broker_client import AnswerError
from nodes.watchlist.police import CHECKER_ROLES, MAX_CHECK_BATCH

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_STALL_S",
    "DEFAULT_WINDOW_S",
    "WatchlistClient",
    "WatchlistError",
    "WrongKey",
]

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S: Final = 0.001
"""How long the first of a batch waits for concurrent checks to join it."""
DEFAULT_STALL_S: Final = 0.1
"""A batch out this long without its answer no longer keeps the next one waiting: some
five times a round trip under load (17 ms alone, 25 ms at 200 checks a second)."""
DEFAULT_IN_FLIGHT: Final = 4
"""Batches travelling at once at most, however many have stalled."""
PURPOSE: Final = "watchlist screening"
BUSY_RETRIES_S: Final = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
"""Waits before asking again when the broker answers that its deliveries to the police
node are all in flight (`interactive_per_recipient`): about 0.3 s in all."""


class WatchlistError(Exception):
    """A check could not be answered; the message says why, never which identifier."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WrongKey(WatchlistError):
    """The answer does not verify under the police node's registered OPRF key."""


class WatchlistClient:
    """Checks identifiers against the police node's watchlist, blinded, in batches."""

    def __init__(
        self,
        ctx: NodeContext,
        *,
        police: str | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        in_flight: int = DEFAULT_IN_FLIGHT,
        stall_s: float = DEFAULT_STALL_S,
        purpose: str = PURPOSE,
    ) -> None:
        if ctx.config.role not in CHECKER_ROLES:
            raise WatchlistError(
                f"{ctx.node_id} is a {ctx.config.role} node; only banks and carriers check "
                "the watchlist"
            )
        self.ctx = ctx
        self._police = police
        self.window_s = window_s
        self.purpose = purpose
        self.in_flight = max(1, in_flight)
        self.stall_s = stall_s
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._pending: list[tuple[Identifier, Future[CheckResult]]] = []
        self._flying: list[float] = []
        """When each batch in flight left (time.monotonic), oldest first."""

    @property
    def police(self) -> str:
        """The police node asked: the one named, else the directory's only police node."""
        return self._police or _the_police_node(self.ctx)

    def check(self, kind: IdentifierKind | str, value: str) -> CheckResult:
        """Listed(reason, advice) or NotListed for one identifier.

        Raises `InvalidIdentifier` (a ValueError naming the kind and what is wrong) for a
        malformed value, before anything is sent; `WatchlistError` if no answer is usable.
        """
        identifier = normalise(kind, value, default_region=self.ctx.config.default_region)
        return self.check_identifier(identifier)

    def check_identifier(self, identifier: Identifier) -> CheckResult:
        """Join the gathering batch (or start one) and wait for its answer."""
        done: Future[CheckResult] = Future()
        with self._lock:
            self._pending.append((identifier, done))
            leader = len(self._pending) == 1
        if leader:
            self._lead()
        return done.result()

    def check_many(self, identifiers: Sequence[Identifier]) -> list[CheckResult]:
        """One blinded batch for these identifiers (at most MAX_CHECK_BATCH), in order."""
        return self._send(list(identifiers))

    def _lead(self) -> None:
        """Wait out the window and this batch's turn, then take the batch and send it."""
        if self.window_s > 0:
            threading.Event().wait(self.window_s)
        with self._turn:
            while (wait_s := self._wait_before_sending()) > 0:
                self._turn.wait(wait_s)
            batch, self._pending = (
                self._pending[:MAX_CHECK_BATCH],
                self._pending[MAX_CHECK_BATCH:],
            )
            rest = bool(self._pending)
            if not batch:  # taken by a batch that left no rest for us
                return
            left = time.monotonic()
            self._flying.append(left)
        if rest:  # more than a batch gathered: the next one leads itself
            threading.Thread(target=self._lead, name="watchlist-batch", daemon=True).start()
        try:
            results = self._send([identifier for identifier, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        finally:
            with self._turn:
                self._flying.remove(left)
                self._turn.notify_all()
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _wait_before_sending(self) -> float:
        """0 if a batch may leave now; else how long until the newest one in flight counts
        as stalled (or a long wait, when `in_flight` batches are out). Lock held."""
        if not self._flying:
            return 0.0
        if len(self._flying) >= self.in_flight:
            return 1.0  # woken when one comes back
        return max(0.0, self._flying[-1] + self.stall_s - time.monotonic())

    def _send(self, identifiers: list[Identifier]) -> list[CheckResult]:
        ctx = self.ctx
        police = self.police
        member = ctx.client.directory().get(police)
        if member is None or not member.active or member.role != "police" or not member.oprf_key:
            raise WatchlistError(
                f"{police} is not an active police node with a registered OPRF key"
            )
        try:
            query = PendingQuery(
                identifiers,
                member.oprf_key,
                bucket_bits=ctx.config.match_bucket_bits,
                max_batch=MAX_CHECK_BATCH,
                parts=1,
            )
        except MatchError as exc:
            raise WatchlistError(exc.reason) from None
        payload = query.payload()
        for wait_s in (*BUSY_RETRIES_S, None):
            draft = Draft(
                sender=ctx.node_id,
                recipients=[police],
                kind=Kind.WATCHLIST_CHECK,
                payload=payload,
                payload_type=QUERY_TYPE,
                purpose=self.purpose,
                batch_size=len(query),
                seal_to=member.seal_key,
            )
            try:
                submitted = ctx.client.submit(draft)
            except grpc.RpcError as exc:
                code, details = exc.code().name, exc.details()  # type: ignore[attr-defined]
                raise WatchlistError(f"the broker refused the check: {code}: {details}") from None
            except AnswerError as exc:
                raise WatchlistError(str(exc)) from None
            answers = [(h, p) for h, p in submitted.answers if h.sender == police]
            if answers:
                break
            refusal = submitted.refusals.get(police, "no answer")
            if wait_s is None or "RESOURCE_EXHAUSTED" not in refusal:
                raise WatchlistError(f"{police} did not answer: {refusal}")
            # The broker's deliveries to the police node are all taken (other checks,
            # other members): nothing was delivered, so asking again changes nothing.
            log.info(
                "watchlist check %s: police node busy, asking again in %.0f ms",
                draft.message_id,
                wait_s * 1000,
            )
            threading.Event().wait(wait_s)
        header, payload = answers[0]
        if header.kind != Kind.WATCHLIST_ANSWER:
            raise WatchlistError(f"answered with {header.kind}, not {Kind.WATCHLIST_ANSWER}")
        try:
            matches = query.open(payload)
        except KeyMismatch as exc:
            log.warning("watchlist answer %s refused: wrong key", header.message_id)
            raise WrongKey(f"{police}: {exc.reason}") from None
        except MatchError as exc:
            log.warning("watchlist answer %s refused: %s", header.message_id, exc.reason)
            raise WatchlistError(f"{police}: {exc.reason}") from None
        labels: list[list[dict[str, str]]] = [[] for _ in identifiers]
        for match in matches:
            labels[match.position].append(match.fields)
        log.info("watchlist check %s: %d identifiers", draft.message_id, len(identifiers))
        at = now_ms()
        return [result_of(found, at) for found in labels]


def _the_police_node(ctx: NodeContext) -> str:
    """The one active police node with an OPRF key; more than one must be named."""
    police = sorted(
        m.node_id
        for m in ctx.client.directory().members
        if m.role == "police" and m.active and m.oprf_key
    )
    if not police:
        raise WatchlistError("the directory lists no active police node with an OPRF key")
    if len(police) > 1:
        raise WatchlistError(
            f"the directory lists {len(police)} police nodes; name the one holding the "
            "watchlist (--police NODE)"
        )
    return police[0]
