"""The committed generated code must be exactly what grpcio-tools makes from proto/."""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = sorted((ROOT / "proto" / "gateway" / "v1").glob("*.proto"))


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_generated_code_matches_proto(proto: Path, tmp_path: Path) -> None:
    proto_include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{proto_include}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(proto),
        ]
    )
    assert code == 0, f"protoc failed on {proto.relative_to(ROOT)}"
    for fresh in sorted((tmp_path / "gateway" / "v1").iterdir()):
        committed = ROOT / "gateway" / "v1" / fresh.name
        assert committed.exists(), f"gateway/v1/{fresh.name} is missing: run `make proto`"
        assert fresh.read_text() == committed.read_text(), (
            f"gateway/v1/{fresh.name} is stale: run `make proto`"
        )


def test_every_generated_module_has_its_proto() -> None:
    stems = {p.stem for p in PROTOS}
    for generated in (ROOT / "gateway" / "v1").glob("*_pb2*.py*"):
        assert generated.name.split("_pb2")[0] in stems, f"{generated.name} has no .proto"
