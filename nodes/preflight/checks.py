"""One check's result, and the error a node refuses to start with."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass(frozen=True)
class Check:
    """What one check found. For FAIL, `detail` says what is wrong and what to do."""

    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, FAIL, detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, WARN, detail)


def skip(name: str, detail: str) -> Check:
    return Check(name, SKIP, detail)


class PreflightError(RuntimeError):
    """The node would fail its first real request: refuse to start, saying why."""

    def __init__(self, failures: list[Check]) -> None:
        self.failures = failures
        first = failures[0]
        more = f" (and {len(failures) - 1} more: run `gateway node check`)" if failures[1:] else ""
        super().__init__(f"{first.name}: {first.detail}{more}")
