"""An identifier is "absent" only if some responder answered: with no answer at all, the
officer's table (command line or console) says so rather than listing it as held by
nobody."""

from __future__ import annotations

from gateway.cli.match_cmd import result_rows
from gateway.console.pages.police import result_tables
from nodes.matching import ResponderOutcome

SHOWN = ["139 0000 0007", "139 0000 0008"]
REFUSED = ResponderOutcome(
    "bank-a", error="no answer: bank-a: FAILED_PRECONDITION match: the match index is being rebuilt"
)
ANSWERED = ResponderOutcome("carrier-1")


def test_with_no_responder_answering_nothing_is_called_absent() -> None:
    rows, absent = result_rows([REFUSED], SHOWN, len(SHOWN))
    assert absent == 0
    assert [row["result"] for row in rows] == ["no answer", "no answer"]
    tables, held_by_nobody = result_tables([REFUSED], SHOWN, {"bank-a": "bank"})
    assert held_by_nobody == []
    assert tables[0].error == REFUSED.error


def test_with_one_responder_answering_the_rest_are_absent() -> None:
    rows, absent = result_rows([REFUSED, ANSWERED], SHOWN, len(SHOWN))
    assert absent == 2
    assert [row["result"] for row in rows] == ["absent", "absent"]
    _, held_by_nobody = result_tables([REFUSED, ANSWERED], SHOWN, {})
    assert held_by_nobody == SHOWN
