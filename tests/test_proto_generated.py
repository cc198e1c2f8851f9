"""The committed generated code must be exactly what grpcio-tools makes from proto/."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("gateway_pb2.py", "gateway_pb2.pyi", "gateway_pb2_grpc.py")


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    proto_include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{proto_include}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(ROOT / "proto" / "gateway" / "v1" / "gateway.proto"),
        ]
    )
    assert code == 0, "protoc failed on proto/gateway/v1/gateway.proto"
    for name in GENERATED:
        fresh = (tmp_path / "gateway" / "v1" / name).read_text()
        committed = (ROOT / "gateway" / "v1" / name).read_text()
        assert fresh == committed, f"gateway/v1/{name} is stale: run `make proto`"
