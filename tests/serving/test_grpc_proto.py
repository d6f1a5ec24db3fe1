"""Our ``inference.proto`` matches the protocol as ``tritonclient.grpc`` speaks it, field by field.

A field with the wrong number or type would not fail loudly: protobuf would
read it as an unknown field and the value would silently be missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2
from tritonclient.grpc import service_pb2

PROTO = Path(__file__).resolve().parents[2] / "serving" / "grpcapi" / "inference.proto"


def ours(tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    out = tmp_path / "inference.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
         f"--descriptor_set_out={out}", PROTO.name],
        check=True,
    )  # fmt: skip
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return fds.file[0]


def messages(
    protos: list[descriptor_pb2.DescriptorProto], prefix: str
) -> dict[str, descriptor_pb2.DescriptorProto]:
    found = {}
    for message in protos:
        name = f"{prefix}.{message.name}"
        found[name] = message
        found.update(messages(list(message.nested_type), name))
    return found


def test_every_message_and_field_matches_tritonclient(tmp_path: Path) -> None:
    mine = ours(tmp_path)
    theirs_file = descriptor_pb2.FileDescriptorProto()
    service_pb2.DESCRIPTOR.CopyToProto(theirs_file)
    assert mine.package == theirs_file.package == "inference"
    theirs = messages(list(theirs_file.message_type), ".inference")
    checked = 0
    for name, message in messages(list(mine.message_type), ".inference").items():
        assert name in theirs, f"{name} is not a message of the protocol"
        fields = {f.name: f for f in theirs[name].field}
        for field in message.field:
            other = fields.get(field.name)
            assert other is not None, f"{name}.{field.name} is not in the protocol"
            assert (field.number, field.type, field.label, field.type_name) == (
                other.number, other.type, other.label, other.type_name,
            ), f"{name}.{field.name} differs"  # fmt: skip
            checked += 1
        assert [o.name for o in message.oneof_decl] == [o.name for o in theirs[name].oneof_decl]
    assert checked >= 50


def test_every_rpc_matches_tritonclient(tmp_path: Path) -> None:
    (service,) = ours(tmp_path).service
    theirs = {m.name: m for m in service_pb2.DESCRIPTOR.services_by_name[service.name].methods}
    assert service.name == "GRPCInferenceService"
    assert {m.name for m in service.method} == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
    }  # fmt: skip
    for method in service.method:
        other = theirs[method.name]
        assert method.input_type == f".{other.input_type.full_name}"
        assert method.output_type == f".{other.output_type.full_name}"
