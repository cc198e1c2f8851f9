"""A set masked chunk by chunk in a background thread, handed out in order.

Each party hashes and masks its own set while the other side works on the previous
exchange, so the two machines (or the two cores of one) are busy at the same time instead
of taking turns, and no exchange waits for a whole set. The crypto releases the GIL between
elements, so a thread is enough.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from gateway.bulk_psi.errors import BulkPsiError


class ChunkPipeline:
    """Runs `work(0)`, ..., `work(count - 1)` in one thread; `take(i)` hands out chunk i."""

    def __init__(self, work: Callable[[int], bytes], count: int, *, name: str) -> None:
        self._work = work
        self._count = count
        self._ready: dict[int, bytes] = {}
        self._failed: BaseException | None = None
        self._cancelled = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for index in range(self._count):
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

    def take(self, index: int, timeout_s: float | None = None) -> bytes | None:
        """Chunk `index` (each is handed out once); None if there is no such chunk, or if it
        is not ready within `timeout_s` (None: wait as long as it takes)."""
        if not 0 <= index < self._count:
            return None
        with self._cond:
            self._cond.wait_for(lambda: self._settled(index), timeout=timeout_s)
            if index in self._ready:
                return self._ready.pop(index)
            if self._failed is not None:
                raise BulkPsiError(
                    grpc.StatusCode.INTERNAL, "masking a chunk of this node's set failed"
                ) from self._failed
            if self._cancelled:
                raise BulkPsiError(grpc.StatusCode.ABORTED, "the session was closed")
            return None

    def cancel(self) -> None:
        """Stop after the chunk in progress and drop what was computed."""
        with self._cond:
            self._cancelled = True
            self._ready.clear()
            self._cond.notify_all()

    def _settled(self, index: int) -> bool:
        return index in self._ready or self._failed is not None or self._cancelled
