"""Loader for the RFC 9497 Appendix A vectors in tests/vectors/rfc9497.

Everything a test compares against comes out of the JSON file, decoded from hex here; nothing
is computed with the code under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VECTORS_FILE = (
    Path(__file__).resolve().parents[1] / "vectors" / "rfc9497" / "ristretto255-SHA512.json"
)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def _hex_list(value: str) -> list[bytes]:
    """A batched field: comma-separated hex values, in batch order."""
    return [_hex(item) for item in value.split(",")]


@dataclass(frozen=True)
class Suite:
    """One mode's key material, as the vectors file states it."""

    mode: int
    identifier: str
    group_dst: bytes
    seed: bytes
    key_info: bytes
    sk: bytes
    pk: bytes | None


@dataclass(frozen=True)
class Case:
    """One test vector; single vectors are batches of one."""

    suite: Suite
    index: int
    batch: int
    inputs: list[bytes]
    blinds: list[bytes]
    blinded_elements: list[bytes]
    evaluation_elements: list[bytes]
    outputs: list[bytes]
    info: bytes | None
    proof: bytes | None
    proof_r: bytes | None

    @property
    def id(self) -> str:
        return f"mode{self.suite.mode}-vector{self.index + 1}-batch{self.batch}"


def _load() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    return data


def suites() -> list[Suite]:
    return [
        Suite(
            mode=raw["mode"],
            identifier=raw["identifier"],
            group_dst=_hex(raw["groupDST"]),
            seed=_hex(raw["seed"]),
            key_info=_hex(raw["keyInfo"]),
            sk=_hex(raw["skSm"]),
            pk=_hex(raw["pkSm"]) if "pkSm" in raw else None,
        )
        for raw in _load()
    ]


def cases(mode: int) -> list[Case]:
    """Every vector of one mode, in file order."""
    found = []
    for raw, suite in zip(_load(), suites(), strict=True):
        if suite.mode != mode:
            continue
        for index, vector in enumerate(raw["vectors"]):
            proof = vector.get("Proof")
            case = Case(
                suite=suite,
                index=index,
                batch=vector["Batch"],
                inputs=_hex_list(vector["Input"]),
                blinds=_hex_list(vector["Blind"]),
                blinded_elements=_hex_list(vector["BlindedElement"]),
                evaluation_elements=_hex_list(vector["EvaluationElement"]),
                outputs=_hex_list(vector["Output"]),
                info=_hex(vector["Info"]) if "Info" in vector else None,
                proof=_hex(proof["proof"]) if proof else None,
                proof_r=_hex(proof["r"]) if proof else None,
            )
            assert len(case.inputs) == case.batch, "vectors file: batch size mismatch"
            found.append(case)
    return found
