"""Curated "remove this check" mutation testing of the security checks.

`mutants.toml` lists every security check with the tests that must fail without it;
`python -m tests.mutation` (`make mutate`) proves it by running those tests against a
scratch copy of the tree with the check removed. The working tree is never changed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).with_name("mutants.toml")


class MutantError(Exception):
    """A mutant that cannot be applied: its text is missing or not unique."""


@dataclass(frozen=True)
class Mutant:
    """One check removed: `find` (exactly once in `file`) becomes `replace`."""

    id: str
    file: str
    find: str
    replace: str
    what: str
    tests: tuple[str, ...]
    area: str = ""

    def apply(self, source: str) -> str:
        """The mutated source; raises MutantError unless `find` occurs exactly once."""
        count = source.count(self.find)
        if count != 1:
            raise MutantError(
                f"{self.id}: the check's text occurs {count} times in {self.file}, want 1"
            )
        return source.replace(self.find, self.replace)


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """The curated list, in file order."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    return [
        Mutant(
            id=entry["id"],
            file=entry["file"],
            find=entry["find"],
            replace=entry["replace"],
            what=entry["what"],
            tests=tuple(entry["tests"]),
            area=entry.get("area", ""),
        )
        for entry in document["mutant"]
    ]
