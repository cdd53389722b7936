"""OpenZeppelin StandardMerkleTree semantics: published fixtures, proofs, dumps, batch trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from datanet.anchoring import merkle
from datanet.anchoring.merkle import (
    LEAF_ENCODING,
    MultiProof,
    StandardMerkleTree,
    batch_leaf,
    batch_tree,
    process_proof,
    standard_leaf_hash,
)
from datanet.errors import AnchoringError
from datanet.schemas.ids import batch_id, content_hash, contribution_id

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name,sort", [("sorted", True), ("unsorted", False)])
def test_published_dumps_load_and_rebuild_identically(name: str, sort: bool) -> None:
    dump = json.loads((FIXTURES / f"standard-v1.{name}.1_0_6.json").read_text())
    loaded = StandardMerkleTree.load(dump)
    assert loaded.root == dump["tree"][0]
    rebuilt = StandardMerkleTree.of([v["value"] for v in dump["values"]], ["string"],
                                    sort_leaves=sort)
    assert rebuilt.dump() == dump


def test_published_snapshot_roots_uint256_string_array() -> None:
    fx = json.loads((FIXTURES / "standard-seed0.json").read_text())
    for key, sort in (("sorted", True), ("unsorted", False)):
        tree = StandardMerkleTree.of(fx["values"], fx["leafEncoding"], sort_leaves=sort)
        assert tree.root == fx[key]["root"]
        assert [v["treeIndex"] for v in tree.dump()["values"]] == fx[key]["treeIndices"]
        for i in range(len(fx["values"])):
            assert tree.verify(i, tree.get_proof(i))


def test_readme_airdrop_root_and_proof() -> None:
    # Example of the @openzeppelin/merkle-tree README.
    values = [
        ["0x1111111111111111111111111111111111111111", "5000000000000000000"],
        ["0x2222222222222222222222222222222222222222", "2500000000000000000"],
    ]
    tree = StandardMerkleTree.of(values, ["address", "uint256"])
    assert tree.root == "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"
    assert tree.get_proof(0) == [
        "0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc"
    ]
    assert tree.leaf_lookup(values[1]) == 1


def test_single_leaf_tree_root_is_leaf_hash_and_proof_empty() -> None:
    tree = StandardMerkleTree.of([["a"]], ["string"])
    assert tree.root == "0x" + standard_leaf_hash(["string"], ["a"]).hex()
    assert tree.get_proof(0) == []
    assert tree.verify(0, [])


def test_multiproofs_verify_and_match_single_proofs() -> None:
    values = [[c] for c in "abcdefghijk"]
    tree = StandardMerkleTree.of(values, ["string"])
    for subset in ([0], [1, 5], [0, 3, 4, 10], list(range(11)), []):
        mp = tree.get_multi_proof(subset)
        assert sorted(v[0] for v in mp.leaves) == sorted(values[i][0] for i in subset)
        assert tree.verify_multi_proof(mp)
    full = tree.get_multi_proof(list(range(11)))
    assert full.proof == () and len(full.proof_flags) == 10 and all(full.proof_flags)
    with pytest.raises(AnchoringError, match="duplicated"):
        tree.get_multi_proof([1, 1])
    one = tree.get_multi_proof([0])
    tampered = MultiProof((["z"],), one.proof, one.proof_flags)
    assert not tree.verify_multi_proof(tampered)


def test_tampered_proof_and_dump_fail() -> None:
    tree = StandardMerkleTree.of([[c] for c in "abcde"], ["string"])
    proof = tree.get_proof(2)
    assert not tree.verify(["x"], proof)
    bad = list(proof)
    bad[0] = "0x" + "00" * 32
    assert not tree.verify(2, bad)
    dump = tree.dump()
    dump["values"][0]["value"] = ["zz"]
    with pytest.raises(AnchoringError, match="expected value at index 0"):
        StandardMerkleTree.load(dump)
    dump = tree.dump()
    dump["tree"][1] = "0x" + "11" * 32
    with pytest.raises(AnchoringError, match="inner node"):
        StandardMerkleTree.load(dump)
    with pytest.raises(AnchoringError, match="format"):
        StandardMerkleTree.load({**tree.dump(), "format": "simple-v1"})


def _accepted(n: int, datanet: str = "legal-qa") -> pa.Table:
    contributors = [f"0x{(i % 7 + 1):040x}" for i in range(n)]
    hashes = [content_hash(f"text number {i}") for i in range(n)]
    ids = [contribution_id(datanet, a, h) for a, h in zip(contributors, hashes, strict=True)]
    return pa.table({"contribution_id": ids, "contributor": contributors, "content_hash": hashes})


def test_batch_tree_matches_generic_abi_encoding() -> None:
    table = _accepted(9)
    bid = batch_id("legal-qa", table["contribution_id"].to_pylist())
    tree = batch_tree("legal-qa", bid, table)
    rows = table.to_pylist()
    values = [batch_leaf("legal-qa", bid, r["contribution_id"], r["contributor"],
                         r["content_hash"]) for r in rows]
    generic = StandardMerkleTree.of(values, LEAF_ENCODING)
    assert tree.root == generic.root
    assert tree.dump() == generic.dump()
    i = tree.index_of("contribution_id", rows[4]["contribution_id"].upper().replace("0X", "0x"))
    assert i == 4
    assert tree.at(4) == values[4]
    leaf = standard_leaf_hash(LEAF_ENCODING, values[4])
    assert "0x" + process_proof(leaf, tree.get_proof(4)).hex() == tree.root
    assert tree.all_proofs()[4] == tree.get_proof(4)
    again = StandardMerkleTree.loads(json.dumps(tree.dump()))
    assert again.root == tree.root and again.index_of("contribution_id",
                                                      rows[8]["contribution_id"]) == 8


@pytest.mark.parametrize("n", [1, 2, 9, 300])
def test_batch_tree_dumps_column_wise_equals_the_generic_json(n: int) -> None:
    """The column-wise ``dumps`` of a batch tree is the very text of the generic tree's."""
    table = _accepted(n)
    bid = batch_id("legal-qa", table["contribution_id"].to_pylist())
    tree = batch_tree("legal-qa", bid, table)
    values = [batch_leaf("legal-qa", bid, r["contribution_id"], r["contributor"],
                         r["content_hash"]) for r in table.to_pylist()]
    generic = StandardMerkleTree.of(values, LEAF_ENCODING)
    text = tree.dumps()
    assert text == json.dumps(tree.dump(), separators=(",", ":")) == generic.dumps()
    assert StandardMerkleTree.loads(text).root == tree.root
    # written in pieces (what the commit streams to trees/): the same text, piece by piece
    for rows in (1, 4, 1 << 16):
        pieces = list(tree.dump_chunks(rows))
        assert "".join(pieces) == text
        assert len(pieces) == 3 + -(-(2 * n - 1) // rows) + -(-n // rows)


def test_batch_tree_binds_datanet_and_batch() -> None:
    table = _accepted(4)
    a = batch_tree("legal-qa", "0x" + "01" * 32, table)
    b = batch_tree("legal-qa", "0x" + "02" * 32, table)
    c = batch_tree("other", "0x" + "01" * 32, table)
    assert len({a.root, b.root, c.root}) == 3
    # A proof from batch a does not verify for the same record claimed in batch b.
    value_b = b.at(0)
    assert not StandardMerkleTree.verify_root(a.root, LEAF_ENCODING, value_b, a.get_proof(0))


def test_batch_tree_empty_and_bad_input() -> None:
    assert batch_tree("legal-qa", "0x" + "01" * 32, _accepted(0)) is None
    table = _accepted(3)
    bad = table.set_column(1, "contributor", pa.array(["0x1234", *table["contributor"][1:]
                                                      .to_pylist()]))
    with pytest.raises(AnchoringError, match="'contributor' value '0x1234'"):
        batch_tree("legal-qa", "0x" + "01" * 32, bad)
    nothex = table.set_column(2, "content_hash", pa.array(["0x" + "zz" * 32,
                                                          *table["content_hash"][1:].to_pylist()]))
    with pytest.raises(AnchoringError, match="not hex"):
        batch_tree("legal-qa", "0x" + "01" * 32, nothex)
    with pytest.raises(AnchoringError, match="no column 'content_hash'"):
        batch_tree("legal-qa", "0x" + "01" * 32, table.drop_columns(["content_hash"]))
    with pytest.raises(AnchoringError, match="no leaf with contribution_id"):
        batch_tree("legal-qa", "0x" + "01" * 32, table).index_of("contribution_id",
                                                                 "0x" + "00" * 32)


def test_batch_tree_sliced_chunked_input() -> None:
    table = _accepted(20)
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7)])
    sliced = chunked.slice(3, 10)
    expected = batch_tree("d", "0x" + "03" * 32, pa.Table.from_pylist(sliced.to_pylist()))
    assert batch_tree("d", "0x" + "03" * 32, sliced).root == expected.root


def test_batch_tree_from_parts_with_or_without_a_row_hint_is_the_same_tree() -> None:
    """Parts (one per accepted file) give the one-table tree whatever the ``rows`` hint says:
    exact (filled in place), short or long (never trusted past the rows actually read)."""
    table = _accepted(50)
    bid = batch_id("legal-qa", table["contribution_id"].to_pylist())
    whole = batch_tree("legal-qa", bid, table)
    parts = [table.slice(0, 20), table.slice(20, 0), table.slice(20, 30)]
    for rows in (None, 50, 10, 80):
        tree = batch_tree("legal-qa", bid, iter(parts), rows=rows)
        assert tree.root == whole.root and tree.dumps() == whole.dumps(), rows
    # large_string columns (as some readers give) decode alike
    large = table.cast(pa.schema([(f.name, pa.large_string()) for f in table.schema]))
    assert batch_tree("legal-qa", bid, large).root == whole.root
    assert batch_tree("legal-qa", bid, iter([table.slice(0, 0)]), rows=5) is None


@pytest.mark.parametrize("step", [1, 3, 7, 64])
def test_batch_tree_hashed_in_slices_is_the_generic_tree(monkeypatch: pytest.MonkeyPatch,
                                                          step: int) -> None:
    """Leaves, levels and validation hashed ``step`` rows at a time (the bound on transient
    copies) give the generic tree's root, nodes and dump; a loaded dump keeps one head row."""
    table = _accepted(41)
    bid = batch_id("legal-qa", table["contribution_id"].to_pylist())
    values = [batch_leaf("legal-qa", bid, r["contribution_id"], r["contributor"],
                         r["content_hash"]) for r in table.to_pylist()]
    generic = StandardMerkleTree.of(values, LEAF_ENCODING)
    monkeypatch.setattr(merkle, "_HASH_ROWS", step)
    for rows in (None, 41, 5):
        tree = batch_tree("legal-qa", bid, iter([table.slice(0, 17), table.slice(17)]),
                          rows=rows)
        assert tree.root == generic.root and tree.dumps() == generic.dumps(), rows
        assert tree.at(40) == values[40] and tree.values == values
    loaded = StandardMerkleTree.loads(generic.dumps())  # validate() hashes in slices too
    assert loaded.root == generic.root and loaded.at(3) == values[3]
    assert loaded._values._head.strides == (0, 1)  # one datanet key + batch id row
    # a dump whose leaves carry other heads keeps each row's own (and still validates)
    mixed = [values[0], batch_leaf("other", bid, *values[1][2:]), *values[2:5]]
    other = StandardMerkleTree.loads(StandardMerkleTree.of(mixed, LEAF_ENCODING).dumps())
    assert other.values == mixed and other._values._head.strides == (64, 1)


def test_batch_tree_compiled_path_is_the_call_per_hash_tree(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A tree large enough for the compiled loops has the root, nodes and dump of the same
    tree hashed one call per keccak (what every smaller tree uses)."""
    n = (1 << 12) + 37  # the compiled loops from 4,096 leaves (little-endian machines)
    table = _accepted(n)
    bid = batch_id("legal-qa", table["contribution_id"].to_pylist())
    compiled = batch_tree("legal-qa", bid, table, rows=n)
    monkeypatch.setattr(merkle, "_COMPILED_ROWS", 1 << 62)
    called = batch_tree("legal-qa", bid, table, rows=n)
    assert np.array_equal(compiled._nodes, called._nodes)
    assert compiled.root == called.root and compiled.dumps() == called.dumps()
    assert StandardMerkleTree.loads(compiled.dumps()).root == called.root  # validate(): again
    leaf = standard_leaf_hash(LEAF_ENCODING, compiled.at(n - 1))
    assert "0x" + process_proof(leaf, compiled.get_proof(n - 1)).hex() == called.root
