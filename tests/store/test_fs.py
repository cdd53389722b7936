"""The store's filesystem seam without a server: URI handling, and the store side of a
datanet (init, commit, manifests, DuckDB views) on fsspec's in-memory filesystem."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from datanet.errors import CommitConflict, StoreError
from datanet.store.fs import ObjectPath, is_remote, normalise_uri, open_root, url_to_fs
from datanet.store.layout import CLAIMS, DatanetStore, init_datanet
from datanet.store.query import connect
from tests.conftest import TINY_SPEC


@pytest.mark.parametrize(("given", "uri", "remote"), [
    ("s3://b/p", "s3://b/p", True),
    (Path("s3://b/p"), "s3://b/p", True),  # pathlib collapsed the double slash
    ("gs:/b/p", "gs://b/p", True),
    ("file:///tmp/x", "file:///tmp/x", False),
    ("C:/data", "C:/data", False),  # a drive letter, not a scheme
    ("relative/dir", "relative/dir", False),
    ("/abs/dir", "/abs/dir", False),
])
def test_uris(given, uri, remote):
    assert normalise_uri(given) == uri
    assert is_remote(given) is remote


def test_unknown_scheme_is_one_line():
    with pytest.raises(StoreError) as info:
        url_to_fs("nosuchfs://b/p")
    assert str(info.value).startswith("nosuchfs://b/p: the nosuchfs:// filesystem is not "
                                      "available")
    assert "\n" not in str(info.value)


def test_object_path_is_the_pathlib_subset_the_store_uses():
    fs, _ = url_to_fs("memory://")
    name = f"t-{uuid.uuid4().hex}"
    base = ObjectPath(fs, f"memory://{name}")
    f = base / "dir" / "a.json"
    assert (f.name, f.stem, f.suffix, f.parent.name) == ("a.json", "a", ".json", "dir")
    assert str(f) == f"memory:///{name}/dir/a.json"
    assert not f.exists()
    assert f.create_exclusive(b"one") is True
    assert f.create_exclusive(b"two") is False
    assert f.read_text() == "one" and f.stat().st_size == 3 and f.is_file()
    f.write_text("three")
    assert f.read_bytes() == b"three"
    assert [p.name for p in (base / "dir").glob("*.json")] == ["a.json"]
    assert [p.name for p in base.iterdir()] == ["dir"]
    f.unlink()
    f.unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError):
        f.read_bytes()


def test_store_side_on_an_in_memory_filesystem():
    root = f"memory://dn-{uuid.uuid4().hex}"
    store = init_datanet(root, TINY_SPEC)
    assert isinstance(store.root, ObjectPath) and store.arrow_fs is not None
    with pytest.raises(StoreError, match="a datanet already exists here"):
        init_datanet(root, TINY_SPEC)
    first = store.commit(batch_id="0x" + "11" * 32, files={}, counts={"input": 0},
                         history_seq=0, sources=[], report={}, tree=None)
    assert first.seq == 1
    assert store.commit(batch_id="0x" + "11" * 32, files={}, counts={}, history_seq=1,
                        sources=[], report={}, tree=None) is None  # already committed
    with pytest.raises(CommitConflict, match="re-run the same input"):
        store.commit(batch_id="0x" + "22" * 32, files={}, counts={}, history_seq=0,
                     sources=[], report={}, tree=None)
    other = DatanetStore(root)
    assert [m.batch_id for m in other.manifests()] == ["0x" + "11" * 32]
    assert (other.root / CLAIMS / "00000001.json").read_text() == first.to_json()
    con = connect(other)
    assert con.execute("SELECT seq, batch_id FROM batches").fetchall() == [
        (1, "0x" + "11" * 32)]


def test_local_roots_stay_paths(tmp_path):
    store = init_datanet(tmp_path / "dn", TINY_SPEC)
    assert store.root == (tmp_path / "dn").resolve() and store.arrow_fs is None
    assert open_root(f"file://{tmp_path}/dn") == store.root
    assert not (store.root / CLAIMS).exists()  # local commits keep os.link under flock
    store.commit(batch_id="0x" + "33" * 32, files={}, counts={}, history_seq=0, sources=[],
                 report={}, tree=None)
    assert not (store.root / CLAIMS).exists()
    assert [p.name for p in (store.root / "batches").iterdir()] == [
        f"00000001-0x{'33' * 32}.json"]


@pytest.mark.parametrize(("uri", "seam"), [
    ("s3://b/in/*.jsonl", True),   # s3fs: listed and read through the store's seam
    ("memory://in/a.jsonl", True),
    ("gs://b/in/*.jsonl", False),  # Beam reads these natively, with its own options
    ("hdfs://nn/in/a.jsonl", False),
    ("/local/in/*.jsonl", False),
    ("file:///local/a.jsonl", False),
])
def test_which_inputs_the_seam_reads(uri, seam):
    from datanet.store.fs import fsspec_reaches

    assert fsspec_reaches(uri) is seam


def test_write_atomic_takes_pieces_local_and_object(tmp_path):
    """Pieces (str and bytes) are written one at a time and read back as one file; on an
    object store they become one put."""
    import fsspec

    from datanet.store.atomic import create_exclusive, write_atomic

    def pieces():
        yield '{"a":'
        yield b"[1,2]"
        yield "}"

    path = tmp_path / "x.json"
    write_atomic(path, pieces())
    assert path.read_bytes() == b'{"a":[1,2]}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]  # no temp file left
    assert create_exclusive(tmp_path / "y.json", pieces())
    assert not create_exclusive(tmp_path / "y.json", "other")
    assert (tmp_path / "y.json").read_bytes() == b'{"a":[1,2]}'
    mem = ObjectPath(fsspec.filesystem("memory"), f"/bucket-{uuid.uuid4().hex}/x.json")
    write_atomic(mem, pieces())
    assert mem.read_bytes() == b'{"a":[1,2]}'
