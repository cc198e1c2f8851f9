"""How far the log is verified, and the last checkpoint that verified.

The regulator reads the whole log, so its console recomputes the whole tree and checks
every checkpoint it was shown (`gateway.audit.verify.verify_log`, as `gateway audit
verify` does). Another member reads only its own entries: each was proven included under
a signed checkpoint, and every checkpoint was checked consistent with the ones seen
before (a fork or rollback is refused while reading), which is what it can know.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.audit.checkpoint import parse_checkpoint
from gateway.audit.note import parse_note
from gateway.audit.verify import StoredEntry, verify_log
from gateway.console.compliance.reading import Logged
from gateway.envelope.build import now_ms
from nodes.broker_client import BrokerClient

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class LogStatus:
    whole_log: bool
    ok: bool
    entries: int
    checkpoints: int
    checked_at_ms: int
    last_size: int = 0
    last_root: str = ""
    last_note: str = ""
    problems: list[str] = field(default_factory=list)


def _last(notes: list[str]) -> tuple[int, str, str]:
    if not notes:
        return 0, "", ""
    note = notes[-1]
    checkpoint = parse_checkpoint(parse_note(note).text)
    return checkpoint.size, checkpoint.root_hash.hex(), note


def log_status(client: BrokerClient, logged: list[Logged], whole_log: bool) -> LogStatus:
    """Verify what was read; never raises for a bad log, it reports it."""
    seen = client.seen_checkpoints()
    if not whole_log:
        size, root, note = _last([c.note for c in seen])
        return LogStatus(False, True, len(logged), len(seen), now_ms(), size, root, note)
    # Checkpoints signed after the read began cover entries not read; the broker client
    # already proved them consistent with the ones below.
    covered = [c for c in seen if c.size <= len(logged)]
    report = verify_log(
        (StoredEntry(item.index, item.proven.leaf) for item in logged),
        covered,
        [client.broker_note_verifier()],
        client.log_origin,
    )
    size, root, note = _last([c.note for c in covered if c.size == report.covered])
    return LogStatus(
        True,
        report.ok,
        report.entries,
        report.checkpoints,
        now_ms(),
        size,
        root,
        note,
        [str(p) for p in report.problems[:MAX_PROBLEMS]],
    )
