"""The compliance data layer on fixed entries: dashboard counts, refusals, deadlines, chart
geometry and search criteria. Expected values are counted by hand from the entries."""

from __future__ import annotations

from gateway.audit.source import ProvenEntry
from gateway.console.compliance import charts, dashboard, search
from gateway.console.compliance.reading import Logged
from gateway.console.i18n import set_language
from tests.console.audit_entries import DAY_MS, T0, sample_entries

AGENCIES = {"police-1": "City Police", "bank-a": "Bank A", "bank-b": "Bank B"}


def logged(entries: list[dict[str, object]]) -> list[Logged]:
    return [Logged(i, e, ProvenEntry(i, b"{}", (), "")) for i, e in enumerate(entries)]


def with_actions() -> list[dict[str, object]]:
    entries = sample_entries()
    entries += [
        {"type": "lifecycle", "at_ms": T0 + 2000, "message_id": "m2", "kind": "FREEZE",
         "from": "delivered", "state": "executed"},
        {"type": "decision", "at_ms": T0 + DAY_MS + 9, "message_id": "m5", "kind": "STOP_PAYMENT",
         "sender": "police-1", "recipients": ["bank-a"], "case_ref": "CASE-5",
         "decision": "ALLOW", "policy_ids": ["police-stop-payment"]},
        {"type": "deadline", "at_ms": T0 + 2 * DAY_MS, "message_id": "m5", "kind": "STOP_PAYMENT",
         "state": "overdue"},
        {"type": "decision", "at_ms": T0 + 2 * DAY_MS + 1, "message_id": "m6", "kind": "FREEZE",
         "sender": "police-1", "recipients": ["bank-b"], "case_ref": "CASE-6",
         "decision": "ALLOW", "policy_ids": ["police-freeze"]},
        {"type": "rejection", "at_ms": T0 + 2 * DAY_MS + 2, "peer": "bank-b", "check": "signature",
         "reason": "bad", "message_id": "m7", "kind": "PING"},
    ]  # fmt: skip
    return entries


def test_messages_per_agency_and_kind_per_day() -> None:
    figures = dashboard.build(logged(with_actions()), AGENCIES, "UTC")
    assert figures.days == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert figures.messages == 6
    assert figures.by_agency == {"City Police": [2, 2, 2]}
    assert figures.by_kind == {
        "FREEZE": [1, 1, 1],
        "MATCH_QUERY": [1, 0, 1],
        "STOP_PAYMENT": [0, 1, 0],
    }


def test_days_follow_the_node_s_time_zone() -> None:
    # 2026-01-01T00:00Z is 08:00 in Shanghai; 16:00Z the day before is 00:00 there.
    entries = [
        {"type": "decision", "at_ms": T0 - 8 * 3_600_000, "sender": "police-1", "kind": "PING"}
    ]
    assert dashboard.build(logged(entries), AGENCIES, "UTC").days == ["2025-12-31"]
    assert dashboard.build(logged(entries), AGENCIES, "Asia/Shanghai").days == ["2026-01-01"]


def test_refusals_by_policy_and_by_broker_check() -> None:
    figures = dashboard.build(logged(with_actions()), AGENCIES, "UTC")
    assert figures.refusals == [("check: signature", 1), ("forbid-no-legal-basis", 1)]


def test_deadlines_met_missed_and_open() -> None:
    figures = dashboard.build(logged(with_actions()), AGENCIES, "UTC")
    # m2 FREEZE answered; m6 FREEZE not yet; m5 STOP_PAYMENT overdue; m3 was denied.
    assert [(d.kind, d.met, d.missed, d.open) for d in figures.deadlines] == [
        ("FREEZE", 1, 0, 1),
        ("STOP_PAYMENT", 0, 1, 0),
    ]


def test_stacked_columns_are_drawn_to_scale() -> None:
    chart = charts.stacked_columns(
        "c", "t", ["2026-01-01", "2026-01-02"], {"a": [3, 0], "b": [1, 4]}
    )
    heights = {b.title: b.height for b in chart.bars}
    # Axis top 4 (the tallest column): a height of 3 is 3/4 of the plot.
    assert heights["2026-01-01 · a: 3"] == charts.PLOT_HEIGHT * 3 / 4
    assert heights["2026-01-02 · b: 4"] == charts.PLOT_HEIGHT
    assert len(chart.bars) == 3  # a zero draws nothing
    assert [g.text for g in chart.gridlines] == ["0", "1", "2", "3", "4"]
    assert chart.rows == [["2026-01-01", "3", "1", "4"], ["2026-01-02", "0", "4", "4"]]
    assert [label.text for label in chart.labels] == ["01-01", "01-02"]


def test_search_criteria_and_their_errors() -> None:
    set_language("en")
    query = search.Query.from_params(
        {"case": " CASE-1 ", "since": "2026-01-01", "until": "2026-01-01"}
    )
    criteria, errors = query.criteria("UTC")
    assert errors == []
    found = search.matching(logged(sample_entries()), criteria)
    assert [item.index for item in found] == [0]  # CASE-1 on 1 January only (m3 is on the 2nd)
    _, errors = search.Query.from_params({"since": "1/1/2026", "decision": "MAYBE"}).criteria("UTC")
    assert errors == ["Since: give a date as YYYY-MM-DD.", "Decision must be ALLOW or DENY."]
    _, errors = search.Query.from_params({"since": "2026-01-02", "until": "2026-01-01"}).criteria(
        "UTC"
    )
    assert errors == ["“Until” must not be before “Since”."]


def test_csv_export_lists_oldest_first_with_iso_times() -> None:
    text = search.csv_text(list(reversed(logged(sample_entries()))))
    lines = text.splitlines()
    assert lines[0].startswith("index,type,at,message_id,kind,sender,recipients")
    assert lines[1].startswith("0,decision,2026-01-01T00:00:00.000Z,m1,MATCH_QUERY,police-1,bank-a")
    assert len(lines) == 1 + len(sample_entries())
