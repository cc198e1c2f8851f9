"""OpenTelemetry for the broker and nodes: traces across gRPC hops, and a few metrics.

Trace context travels in gRPC metadata (the opentelemetry-instrumentation-grpc
interceptors), and through the broker's outbox in the stored W3C `traceparent`, so a
freeze is one trace from the police node through the broker to the bank even when it
waited in the outbox. Nothing is exported unless an OTLP endpoint is configured.

Span and metric attributes are metadata only: kinds, node ids, decisions, policy ids,
sizes. Never an identifier, blinded or not; `safe_attributes` refuses anything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import client_interceptor, grpcext, server_interceptor

TRACER = trace.get_tracer("gateway")
METER = metrics.get_meter("gateway")

ALLOWED_ATTRIBUTES = frozenset(
    {
        "gateway.kind",
        "gateway.sender",
        "gateway.recipient",
        "gateway.recipients",
        "gateway.decision",
        "gateway.policy_ids",
        "gateway.message_id",
        "gateway.batch_size",
        "gateway.entries",
        "gateway.outcome",
        "gateway.attempt",
        "gateway.role",
    }
)
"""The only span attributes the gateway sets itself: metadata, never identifiers."""


class Instruments:
    """The gateway's metric instruments, made on one meter.

    By default that is the global meter, which forwards to whatever provider `setup`
    installs later; `metrics_on` binds them to a provider passed in instead, since the
    global provider can be set only once per process.
    """

    def __init__(self, meter: metrics.Meter) -> None:
        self.messages = meter.create_counter(
            "gateway.messages",
            unit="1",
            description="Messages decided by the broker, by kind and decision",
        )
        self.denials = meter.create_counter(
            "gateway.policy.denials", unit="1", description="Messages denied by policy, by kind"
        )
        self.submit_latency = meter.create_histogram(
            "gateway.submit.duration", unit="ms", description="Broker time per Submit, by kind"
        )
        self.delivery_latency = meter.create_histogram(
            "gateway.delivery.duration", unit="ms", description="Time of one delivery to a node"
        )
        meter.create_observable_gauge(
            "gateway.outbox.depth",
            callbacks=[_read_outbox],
            unit="1",
            description="Undelivered messages",
        )


_OUTBOX_DEPTHS: dict[int, Callable[[], int]] = {}


def _read_outbox(_options: metrics.CallbackOptions) -> list[metrics.Observation]:
    return [metrics.Observation(depth()) for depth in list(_OUTBOX_DEPTHS.values())]


_instruments = Instruments(METER)


def instruments() -> Instruments:
    """The instruments to record on now (looked up per use, so `metrics_on` reaches
    servers that were started before it)."""
    return _instruments


@contextmanager
def metrics_on(provider: metrics.MeterProvider) -> Iterator[Instruments]:
    """Record the gateway's metrics on `provider` instead of the global one, for a while."""
    global _instruments
    previous = _instruments
    _instruments = Instruments(provider.get_meter("gateway"))
    try:
        yield _instruments
    finally:
        _instruments = previous


def _not_health(details: Any) -> bool:
    """Trace every call but health checks (a prefix test: this runs on every call)."""
    method = getattr(details, "full_method", None) or getattr(details, "method", "")
    if isinstance(method, bytes):  # grpc gives bytes in some versions
        method = method.decode()
    return not str(method).startswith("/grpc.health.")


def tracing_enabled() -> bool:
    """Whether a tracer provider is installed (by `setup`, or by a test)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def safe_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes, if every key is an allowed metadata key; a bug otherwise."""
    unknown = set(attributes) - ALLOWED_ATTRIBUTES
    if unknown:
        raise ValueError(f"span attributes not on the metadata list: {sorted(unknown)}")
    return dict(attributes)


@contextmanager
def span(
    name: str, attributes: Mapping[str, Any], *, context: Context | None = None
) -> Iterator[trace.Span]:
    """A span named `name` with metadata attributes (see ALLOWED_ATTRIBUTES).

    With no tracer provider installed it is the no-op span, at no cost.
    """
    if not tracing_enabled():
        safe_attributes(attributes)
        yield trace.INVALID_SPAN
        return
    with TRACER.start_as_current_span(
        name, context=context, attributes=safe_attributes(attributes)
    ) as current:
        yield current


def server_interceptors() -> list[grpc.ServerInterceptor]:  # type: ignore[type-arg]
    """Extract trace context from incoming metadata and open a server span per call.

    None when no tracer provider is installed: spans nobody records would cost every
    call about a tenth of the broker's CPU. Install the provider (`setup`) before
    building servers and channels.
    """
    return [server_interceptor(filter_=_not_health)] if tracing_enabled() else []


def instrument_channel(channel: grpc.Channel) -> grpc.Channel:
    """Inject the current trace context into every call's metadata (if tracing is on)."""
    if not tracing_enabled():
        return channel
    intercepted: grpc.Channel = grpcext.intercept_channel(
        channel, client_interceptor(filter_=_not_health)
    )
    return intercepted


def current_traceparent() -> str:
    """The W3C traceparent of the current span ('' if none), to store with a message."""
    if not tracing_enabled():  # no span can be current: the propagators' walk finds none
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def context_from(traceparent: str) -> Context | None:
    """The trace context a stored traceparent names, or None."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


def observe_outbox(depth: Callable[[], int]) -> Callable[[], None]:
    """Report an outbox's depth in the gauge; returns the call that stops reporting it."""
    key = id(depth)
    _OUTBOX_DEPTHS[key] = depth

    def stop() -> None:
        _OUTBOX_DEPTHS.pop(key, None)

    return stop


def setup(service_name: str, endpoint: str | None = None, *, prometheus: bool = False) -> None:
    """Install SDK providers for a serving process; export only where configured.

    Traces and metrics go to the OTLP endpoint from the argument or
    OTEL_EXPORTER_OTLP_ENDPOINT; with `prometheus`, metrics are also kept for the
    operations endpoint's `/metrics` (`gateway.ops_http`). With neither, spans and
    metrics are recorded by no one and cost almost nothing.
    """
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint and not prometheus:
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": service_name})
    readers: list[MetricReader] = []
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(tracer_provider)
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint)))
    if prometheus:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
