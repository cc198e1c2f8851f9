"""One freeze is one connected trace across police, broker and bank; no identifier in it.

The broker and the bank serve in this process, so every span reaches one in-memory
exporter; the police side is this test's client. The trace must hold the police's
request, the broker's Submit, policy and audit spans, the outbox delivery (which runs
later, in another thread, joined through the stored traceparent), the bank's Deliver
and its execution, and the receipt's delivery back to the police node's server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import Session

from gateway.localnet import Consortium
from nodes.actions.police import ActionRequestRow, ActionSpec, issue_action
from tests.actions.seed import seed_accounts
from tests.consortium import client, running

ACCOUNT = "6222020200112233445"


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
    seed_accounts(c, "bank-a", {ACCOUNT: 500_000})
    with running(c, ("police-1", "bank-a")):
        yield c


def freeze(c: Consortium) -> str:
    ctx = client(c, "police-1")
    try:
        result = issue_action(
            ctx,
            ActionSpec(
                recipient="bank-a",
                action="STOP_PAYMENT",
                case_ref="C-OTEL",
                legal_basis="art. 11",
                issuing_officer="o-1",
                approving_officer="o-2",
                identifier_kind="bank_account",
                identifier=ACCOUNT,
                amount_minor=1_000,
                duration_hours=4,
            ),
        )
        for _ in range(150):
            with Session(ctx.engine) as s:
                row = s.get(ActionRequestRow, result.message_id)
                if row is not None and row.state == "executed":
                    return result.message_id
            time.sleep(0.1)
    finally:
        ctx.client.close()
    raise AssertionError("no receipt")


def test_one_freeze_is_one_connected_trace(exporter: InMemorySpanExporter, net: Consortium) -> None:
    exporter.clear()
    freeze(net)
    time.sleep(0.5)  # the outbox's last delivery event closes its span after the receipt
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "freeze.request"]
    trace_id = root.context.trace_id
    mine = [s for s in spans if s.context.trace_id == trace_id]
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
    time.sleep(0.5)
    spans = exporter.get_finished_spans()
    assert spans
    forms = (ACCOUNT, ACCOUNT[-8:], "bank_account\x00")
    for s in spans:
        values = [str(v) for v in (s.attributes or {}).values()]
        values += [str(v) for e in s.events for v in (e.attributes or {}).values()]
        values.append(s.status.description or "")
        for value in values:
            assert not any(form in value for form in forms), f"{s.name} carries an identifier"


def test_metrics_count_messages_denials_latency_and_outbox(net: Consortium) -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        pytest.skip("a meter provider was installed earlier in this process")
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    freeze(net)
    bank = client(net, "bank-a")
    try:
        with pytest.raises(grpc.RpcError):
            issue_action(
                bank,
                ActionSpec(
                    recipient="bank-a",
                    action="STOP_PAYMENT",
                    case_ref="C-OTEL",
                    legal_basis="art. 11",
                    issuing_officer="o-1",
                    approving_officer="o-2",
                    identifier_kind="bank_account",
                    identifier=ACCOUNT,
                    amount_minor=1,
                    duration_hours=1,
                ),
            )
    finally:
        bank.client.close()
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
