"""One freeze is one connected trace across police, broker and bank; no identifier in it.

The broker and the bank serve in this process, so every span reaches one in-memory
exporter; the police side is this test's client. The trace must hold the police's
request, the broker's Submit, policy and audit spans, the outbox delivery (which runs
later, in another thread, joined through the stored traceparent), the bank's Deliver
and its execution, and the receipt's delivery back to the police node's server.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session

from gateway.localnet import Consortium
from gateway.telemetry import metrics_on
from nodes.actions.police import ActionRequestRow, ActionSpec, issue_action
from tests.actions.seed import ACCOUNT, HOLDER, seed_accounts, spec
from tests.consortium import client, running
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("otel"))
    seed_accounts(c, "bank-a", dict.fromkeys(ACCOUNTS, 500_000))
    with running(c, ("police-1", "bank-a")):
        yield c


ACCOUNTS = (ACCOUNT, "6222020200998877665", "6222020200555544443", "6222020200123456789")
"""An account may be stopped twice: each stop-payment of this module takes the next one."""
_next_account = itertools.cycle(ACCOUNTS)


def stop_payment(amount_minor: int, account: str = ACCOUNT) -> ActionSpec:
    return spec(case_ref="C-OTEL", amount_minor=amount_minor, duration_hours=4, identifier=account)


def freeze(c: Consortium) -> str:
    ctx = client(c, "police-1")
    try:
        result = issue_action(ctx, stop_payment(amount_minor=1_000, account=next(_next_account)))

        def executed() -> bool:
            with Session(ctx.engine) as s:
                row = s.get(ActionRequestRow, result.message_id)
                return row is not None and row.state == "executed"

        wait_for(executed)
        return result.message_id
    finally:
        ctx.client.close()


def finished_trace(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans of the one freeze's trace once its last spans have ended: the outbox's
    delivery (closed by the delivery event that follows the receipt), the police node's
    Deliver of the receipt (which ends after the node stored it), and the parent of
    every span (a broker's server span can end before the client span around it)."""
    mine: list[ReadableSpan] = []

    def complete() -> bool:
        spans = exporter.get_finished_spans()
        roots = [s for s in spans if s.name == "freeze.request"]
        if len(roots) != 1:
            return False
        mine[:] = [s for s in spans if s.context.trace_id == roots[0].context.trace_id]
        deliveries = [s for s in mine if s.name == "/gateway.v1.Node/Deliver"]
        servers = [s for s in deliveries if s.kind == SpanKind.SERVER]
        ended = {s.context.span_id for s in mine}
        parents = all(s.parent is None or s.parent.span_id in ended for s in mine)
        return "outbox.deliver" in {s.name for s in mine} and len(servers) == 2 and parents

    wait_for(complete)
    return mine


def test_one_freeze_is_one_connected_trace(exporter: InMemorySpanExporter, net: Consortium) -> None:
    exporter.clear()
    freeze(net)
    mine = finished_trace(exporter)
    [root] = [s for s in mine if s.name == "freeze.request"]
    names = {s.name for s in mine}
    assert {
        "freeze.request",
        "policy.decide",
        "audit.append",
        "outbox.deliver",
        "action.execute",
        "/gateway.v1.Broker/Submit",
        "/gateway.v1.Node/Deliver",
    } <= names
    servers = [s for s in mine if s.kind == SpanKind.SERVER]
    assert {"/gateway.v1.Broker/Submit", "/gateway.v1.Node/Deliver"} <= {s.name for s in servers}
    # Three servers: the broker's Submit, the bank's Deliver, and the police node's
    # Deliver of the receipt (two Node/Deliver server spans).
    assert len([s for s in servers if s.name == "/gateway.v1.Node/Deliver"]) == 2
    # Every span of the trace hangs off the police's request.
    by_id = {s.context.span_id: s for s in mine}
    for s in mine:
        node = s
        while node.parent is not None and node.parent.span_id in by_id:
            node = by_id[node.parent.span_id]
        assert node is root, f"{s.name} is not connected to the request"


def test_no_identifier_in_any_span(exporter: InMemorySpanExporter, net: Consortium) -> None:
    exporter.clear()
    freeze(net)
    finished_trace(exporter)
    spans = exporter.get_finished_spans()
    forms = (*ACCOUNTS, *(a[-8:] for a in ACCOUNTS), "bank_account\x00", HOLDER)
    for s in spans:
        values = [str(v) for v in (s.attributes or {}).values()]
        values += [str(v) for e in s.events for v in (e.attributes or {}).values()]
        values.append(s.status.description or "")
        for value in values:
            assert not any(form in value for form in forms), f"{s.name} carries an identifier"


def test_metrics_count_messages_denials_latency_and_outbox(net: Consortium) -> None:
    """Recorded on a provider of the test's own, whatever provider is installed globally
    (the global one can be set only once per process, so it is set here if nobody has)."""
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    reader = InMemoryMetricReader()
    with metrics_on(MeterProvider(metric_readers=[reader])):
        freeze(net)
        bank = client(net, "bank-a")
        try:
            with pytest.raises(grpc.RpcError) as refused:
                issue_action(bank, stop_payment(amount_minor=1))  # a bank may not ask
        finally:
            bank.client.close()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[dict[str, object]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = [dict(p.attributes or {}) for p in metric.data.data_points]
    assert {"gateway.kind": "STOP_PAYMENT", "gateway.decision": "ALLOW"} in points[
        "gateway.messages"
    ]
    assert {"gateway.kind": "STOP_PAYMENT", "gateway.decision": "DENY"} in points[
        "gateway.messages"
    ]
    assert {"gateway.kind": "STOP_PAYMENT"} in points["gateway.policy.denials"]
    assert "gateway.submit.duration" in points
    assert "gateway.outbox.depth" in points
