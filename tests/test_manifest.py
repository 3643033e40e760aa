"""The run manifest names every output file, wherever a record holds it."""

from __future__ import annotations

from ptystudy.records import FileRecord, _Record, output_hashes


class _Outer(_Record):
    file: FileRecord
    parts: tuple[FileRecord, ...]
    named: dict[str, FileRecord]


class _Nest(_Record):
    inner: _Outer
    optional: FileRecord | None


def test_files_are_found_at_any_depth():
    def record(name: str) -> FileRecord:
        return FileRecord(path=f"/run/{name}", sha256=name * 2)

    outer = _Outer(file=record("a"), parts=(record("b"), record("c")), named={"x": record("d")})
    hashes = output_hashes([_Nest(inner=outer, optional=None), record("e")])
    assert hashes == {f"/run/{name}": name * 2 for name in "abcde"}
