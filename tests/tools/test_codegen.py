"""The committed generated code and descriptor set match what proto/ generates."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2

from reviewrank.service.tools import codegen


def test_generated_code_matches_proto_sources(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path / "gen", tmp_path / "reviewrank.protoset")

    for path in written:
        if path.suffix == ".protoset":
            committed = codegen.PROTOSET
        else:
            committed = codegen.GEN_ROOT / path.relative_to(tmp_path / "gen")
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run make gen"


def test_no_stale_generated_files_are_left_behind(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path / "gen", tmp_path / "reviewrank.protoset")
    expected = {p.relative_to(tmp_path / "gen") for p in written if p.suffix != ".protoset"}

    hand_written = codegen.GEN_ROOT / "reviewrank" / "client"  # the client's helper
    committed = {
        p.relative_to(codegen.GEN_ROOT)
        for p in (codegen.GEN_ROOT / "reviewrank").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and hand_written not in p.parents
    }

    assert expected == committed


def test_protoset_holds_every_service_with_its_imports() -> None:
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(codegen.PROTOSET.read_bytes())

    files = {f.name: f for f in descriptor_set.file}
    services = {s.name for f in files.values() for s in f.service}
    assert {"FeedbackService", "RankingService", "AdminService"} <= services
    assert "google/protobuf/timestamp.proto" in files
