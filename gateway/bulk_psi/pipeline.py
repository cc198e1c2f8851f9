"""A set prepared and masked chunk by chunk in a background thread, handed out in order.

Each party reads, hashes and masks its own set while the other side works on the previous
exchange, so the two machines (or the two cores of one) are busy at the same time instead
of taking turns, and no exchange waits for a whole set. The crypto releases the GIL, so a
thread is enough.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from gateway.bulk_psi.errors import BulkPsiError


class ChunkPipeline:
    """Runs `prepare()` (which returns the number of chunks), then `work(0)`, `work(1)`, ...

    `take(i)` hands out chunk i once it is ready; failures of either step surface there.
    """

    def __init__(
        self, prepare: Callable[[], int], work: Callable[[int], bytes], *, name: str
    ) -> None:
        self._prepare = prepare
        self._work = work
        self._count: int | None = None
        self._ready: dict[int, bytes] = {}
        self._failed: BaseException | None = None
        self._cancelled = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            count = self._prepare()
            with self._cond:
                self._count = count
                self._cond.notify_all()
            for index in range(count):
                if self._cancelled:
                    return
                result = self._work(index)
                with self._cond:
                    self._ready[index] = result
                    self._cond.notify_all()
        except BaseException as exc:  # surfaced to the taker, never swallowed
            with self._cond:
                self._failed = exc
                self._cond.notify_all()

    def count(self, timeout_s: float | None = 0.0) -> int | None:
        """The number of chunks, waiting up to `timeout_s` for `prepare`; None if not yet."""
        with self._cond:
            self._cond.wait_for(self._prepared, timeout=timeout_s)
            self._raise_failure()
            return self._count

    def take(self, index: int, timeout_s: float | None = None) -> bytes | None:
        """Chunk `index` (each is handed out once); None if there is no such chunk, or if it
        is not ready within `timeout_s` (None: wait as long as it takes)."""
        with self._cond:
            self._cond.wait_for(lambda: self._settled(index), timeout=timeout_s)
            if index in self._ready:
                return self._ready.pop(index)
            self._raise_failure()
            return None

    def cancel(self) -> None:
        """Stop after the step in progress and drop what was computed."""
        with self._cond:
            self._cancelled = True
            self._ready.clear()
            self._cond.notify_all()

    def _prepared(self) -> bool:
        return self._count is not None or self._failed is not None or self._cancelled

    def _settled(self, index: int) -> bool:
        past_end = self._count is not None and index >= self._count
        return index in self._ready or past_end or self._failed is not None or self._cancelled

    def _raise_failure(self) -> None:
        if self._failed is not None:
            if isinstance(self._failed, BulkPsiError):
                raise BulkPsiError(self._failed.status, self._failed.reason)
            raise BulkPsiError(
                grpc.StatusCode.INTERNAL, "masking a chunk of this node's set failed"
            ) from self._failed
        if self._cancelled:
            raise BulkPsiError(grpc.StatusCode.ABORTED, "the session was closed")
