"""A node's broker client never hangs: concurrent submits while the directory refreshes.

With a directory time-to-live of zero, every `directory()` call refetches the signed
directory, so each receipt check refreshes it while another thread compares checkpoints.
The client once held its lock across that comparison and re-took it inside the refresh:
the first receipt after the first one hung for good. A watchdog fails the test with every
thread's stack instead of letting it hang.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.broker_client import BrokerClient
from nodes.runtime import open_node
from tests.watchdog import Watchdog, run_threads

THREADS = 4
SUBMITS = 5
DEADLINE_S = 20.0


def ping() -> Draft:
    return Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")


@pytest.fixture
def eager_client(network: Consortium) -> Iterator[BrokerClient]:
    """The police node's broker client, refetching the directory on every use."""
    config = network.node_config("police-1")
    ctx = open_node(replace(config, directory_ttl_s=0.0, call_timeout_s=10.0))
    yield ctx.client
    ctx.client.close()


def test_concurrent_submits_with_a_zero_directory_ttl_all_finish(
    eager_client: BrokerClient,
) -> None:
    finished: list[str] = []

    def submitter(n: int) -> Callable[[], None]:
        def work() -> None:
            for i in range(SUBMITS):
                with watchdog.call(f"submit {n}.{i}", DEADLINE_S):
                    reply = eager_client.submit(ping())
                assert [h.sender for h, _ in reply.answers] == ["bank-a"]
                finished.append(reply.message_id)

        return work

    with Watchdog() as watchdog:
        errors = run_threads(watchdog, [submitter(n) for n in range(THREADS)], timeout_s=120)
    assert errors == []
    assert len(set(finished)) == THREADS * SUBMITS
    # Every receipt's checkpoint was recorded; the largest is at least one per submit.
    sizes = [c.size for c in eager_client.seen_checkpoints()]
    assert sizes == sorted(set(sizes)) and sizes[-1] >= THREADS * SUBMITS
