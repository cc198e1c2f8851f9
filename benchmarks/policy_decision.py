"""Microseconds per policy decision with the shipped broker policy (not a timed test).

Run: ``.venv/bin/python benchmarks/policy_decision.py [--rounds N] [--repeat R]``

Prints, for a few representative requests, the best and median time per
``PolicyEngine.decide`` over ``repeat`` runs of ``rounds`` decisions, next to references
measured the same way with pre-parsed cedarpy handles: one call with an empty policy set
(the floor any engine on cedarpy pays, without and with the nine context fields), and one
call with the whole broker policy set and full context, as a decision would cost without
the engine's plans. Figures depend on the machine; compare rows, not runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cedarpy

from gateway.policy import Party, PolicyEngine, PolicyRequest, make_context

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "gateway" / "policies" / "broker.cedar"
SCHEMA = ROOT / "gateway" / "policies" / "schema.cedarschema"

POLICE = Party("police-1", "police", "City Police")
BANK = Party("bank-a", "bank", "Bank A")
CARRIER = Party("carrier-1", "carrier", "Carrier One")
REGULATOR = Party("regulator-1", "regulator", "Regulator")
BROKER = Party("broker", "broker", "Consortium broker")


def case_context(**numbers: int) -> dict[str, str | int | bool]:
    context = make_context(
        sender_kind_last_hour=3,
        sender_actions_last_hour=3,
        sender_bytes_last_hour=3,
        case_ref="CASE-2024-0001",
        legal_basis="CPL art. 144",
        purpose="fraud investigation",
    )
    context.update(numbers)
    return context


def requests() -> dict[str, PolicyRequest]:
    freeze = case_context(amount_minor=50_000, duration_hours=72)
    return {
        "FREEZE police->bank (allow)": PolicyRequest(POLICE, BANK, "FREEZE", freeze),
        "FREEZE bank->police (deny, 2 forbids)": PolicyRequest(BANK, POLICE, "FREEZE", freeze),
        "STOP_PAYMENT 49 h (default deny)": PolicyRequest(
            POLICE,
            BANK,
            "STOP_PAYMENT",
            case_context(amount_minor=1, duration_hours=49),
        ),
        "MATCH_QUERY police->carrier (allow)": PolicyRequest(
            POLICE,
            CARRIER,
            "MATCH_QUERY",
            case_context(batch_size=64),
        ),
        "PING police->bank (allow)": PolicyRequest(
            POLICE,
            BANK,
            "PING",
            make_context(
                sender_kind_last_hour=1, sender_actions_last_hour=1, sender_bytes_last_hour=1
            ),
        ),
        "AUDIT_READ regulator->broker (allow)": PolicyRequest(
            REGULATOR,
            BROKER,
            "AUDIT_READ",
            make_context(
                sender_kind_last_hour=1, sender_actions_last_hour=1, sender_bytes_last_hour=1
            ),
        ),
        "unknown kind (refused before Cedar)": PolicyRequest(
            POLICE,
            BANK,
            "TRANSFER",
            make_context(
                sender_kind_last_hour=1, sender_actions_last_hour=1, sender_bytes_last_hour=1
            ),
        ),
    }


def measure(call: Callable[[], object], rounds: int, repeat: int) -> tuple[float, float]:
    """Best and median microseconds per call."""
    for _ in range(min(rounds, 200)):
        call()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(rounds):
            call()
        runs.append((time.perf_counter_ns() - start) / rounds / 1000)
    return min(runs), statistics.median(runs)


def cedarpy_references(freeze: PolicyRequest) -> dict[str, Callable[[], object]]:
    schema = cedarpy.Schema.from_str(SCHEMA.read_text("utf-8"))
    entities = cedarpy.Entities.from_json_str(
        json.dumps(
            [
                {
                    "uid": {"type": "Gateway::Node", "id": p.node_id},
                    "attrs": {"role": p.role, "agency": p.agency},
                    "parents": [],
                }
                for p in (freeze.sender, freeze.recipient)
            ]
        ),
        schema,
    )
    request = {
        "principal": {"type": "Gateway::Node", "id": freeze.sender.node_id},
        "action": {"type": "Gateway::Action", "id": freeze.kind},
        "resource": {"type": "Gateway::Node", "id": freeze.recipient.node_id},
        "context": json.dumps(dict(freeze.context)),
    }
    empty = cedarpy.PolicySet.from_str("")
    whole = cedarpy.PolicySet.from_str(POLICY.read_text("utf-8"))
    bare = {**request, "context": "{}"}
    return {
        "cedarpy floor: empty policy set, empty context": lambda: cedarpy.is_authorized(
            bare, empty, entities
        ),
        "cedarpy floor: empty policy set, full context": lambda: cedarpy.is_authorized(
            request, empty, entities
        ),
        "whole broker set, full context (no plans)": lambda: cedarpy.is_authorized(
            request, whole, entities
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="decisions per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; best and median are shown")
    args = parser.parse_args()

    start = time.perf_counter()
    engine = PolicyEngine.load(POLICY, SCHEMA)
    load_ms = (time.perf_counter() - start) * 1000
    print(f"broker policy: {len(engine.policy_ids)} policies, loaded in {load_ms:.1f} ms")
    print(f"{'request':<48} {'best us':>8} {'median us':>10}")
    cases = requests()
    for _ in range(args.rounds):  # warm up: plans per sender and recipient, caches, clocks
        for request in cases.values():
            engine.decide(request)
    for name, request in cases.items():
        best, median = measure(functools.partial(engine.decide, request), args.rounds, args.repeat)
        print(f"{name:<48} {best:>8.1f} {median:>10.1f}")
    for name, call in cedarpy_references(cases["FREEZE police->bank (allow)"]).items():
        best, median = measure(call, args.rounds, args.repeat)
        print(f"{name:<48} {best:>8.1f} {median:>10.1f}")


if __name__ == "__main__":
    main()
