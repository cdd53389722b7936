"""OpenZeppelin ``StandardMerkleTree`` in Python, and the Merkle tree of an accepted batch.

Same semantics as the npm package ``@openzeppelin/merkle-tree`` (``standard-v1``): a leaf is
``keccak256(keccak256(abi.encode(types, value)))``, inner nodes hash the sorted pair of their
children, leaves are sorted by hash (by default), the tree is a flat array with the root at
index 0 and the leaves at the end in reverse order, and ``dump()``/``load()`` read and write
the same JSON. Proofs verify with ``MerkleProof.verify``/``verifyCalldata`` and
``multiProofVerify`` in OpenZeppelin Contracts.

Nodes are kept in one ``(2n-1, 32)`` uint8 array and hashed one tree level at a time, so a
batch tree of a million leaves costs about 64 MB and a few seconds (see
``benchmarks/anchoring.py``).
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from eth_abi import encode as abi_encode

from datanet.errors import AnchoringError
from datanet.schemas.ids import datanet_key, keccak, to_bytes32

__all__ = [
    "LEAF_ENCODING",
    "LEAF_FIELDS",
    "FORMAT",
    "MultiProof",
    "StandardMerkleTree",
    "standard_leaf_hash",
    "hash_pair",
    "process_proof",
    "process_multi_proof",
    "batch_tree",
    "batch_leaf",
    "hex_matrix",
    "sorted_distinct_rows",
]

#: Format tag of the JSON dump, as written by ``@openzeppelin/merkle-tree``.
FORMAT = "standard-v1"
#: ABI types of a batch leaf: (datanetKey, batchId, contributionId, contributor, contentHash).
LEAF_ENCODING: tuple[str, ...] = ("bytes32", "bytes32", "bytes32", "address", "bytes32")
#: Names of the batch leaf fields, aligned with :data:`LEAF_ENCODING`.
LEAF_FIELDS: tuple[str, ...] = (
    "datanet_key", "batch_id", "contribution_id", "contributor", "content_hash"
)


_keccak = keccak



def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _unhex32(h: str) -> bytes:
    try:
        return to_bytes32(h)
    except ValueError as exc:
        raise AnchoringError(f"{h!r} is not a 0x-prefixed 32-byte hex string") from exc


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two nodes in ascending byte order (OpenZeppelin ``_hashPair``)."""
    return _keccak(a + b if a <= b else b + a)


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """``keccak256(keccak256(abi.encode(leaf_encoding, value)))``."""
    encoded = abi_encode(list(leaf_encoding), _abi_values(leaf_encoding, value))
    return _keccak(_keccak(encoded))


def process_proof(leaf: bytes, proof: Iterable[str | bytes]) -> bytes:
    """Root implied by a leaf hash and its proof (``MerkleProof.processProof``)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling if isinstance(sibling, bytes) else _unhex32(sibling))
    return node


def process_multi_proof(
    leaves: Sequence[bytes], proof: Sequence[str | bytes], proof_flags: Sequence[bool]
) -> bytes:
    """Root implied by a multiproof (``MerkleProof.processMultiProof``)."""
    proof_b = [p if isinstance(p, bytes) else _unhex32(p) for p in proof]
    if len(proof_b) < len(proof_flags) - sum(bool(f) for f in proof_flags):
        raise AnchoringError("invalid multiproof: not enough proof hashes for the flags")
    if len(leaves) + len(proof_b) != len(proof_flags) + 1:
        raise AnchoringError(
            f"invalid multiproof: {len(leaves)} leaves + {len(proof_b)} proof hashes "
            f"must equal {len(proof_flags)} flags + 1"
        )
    stack = list(leaves)
    pos = 0
    for flag in proof_flags:
        a = stack.pop(0)
        if flag:
            b = stack.pop(0)
        else:
            b = proof_b[pos]
            pos += 1
        stack.append(hash_pair(a, b))
    if stack:
        return stack[-1]
    return proof_b[pos]


# --- ABI value coercion -------------------------------------------------------------------

_ARRAY_RE = re.compile(r"^(.*)\[(\d*)\]$")


def _abi_values(types: Sequence[str], values: Sequence[Any]) -> list[Any]:
    if len(types) != len(values):
        raise AnchoringError(
            f"leaf value {values!r} has {len(values)} fields; the encoding {list(types)} "
            f"needs {len(types)}"
        )
    return [_abi_value(t, v) for t, v in zip(types, values, strict=True)]


def _abi_value(tp: str, v: Any) -> Any:
    """Convert a JSON value (as written by the JS library) to what eth-abi encodes."""
    m = _ARRAY_RE.match(tp)
    if m:
        return [_abi_value(m.group(1), x) for x in v]
    if tp.startswith("tuple(") or tp.startswith("("):
        raise AnchoringError(f"leaf type {tp!r} is not supported (tuples)")
    if tp.startswith(("uint", "int")):
        if isinstance(v, str):
            return int(v, 16) if v.lower().startswith(("0x", "-0x")) else int(v)
        return int(v)
    if tp.startswith("bytes") and isinstance(v, str):
        return bytes.fromhex(v[2:] if v.startswith("0x") else v)
    if tp == "address" and isinstance(v, str) and v.lower() == v:
        return v  # eth-abi accepts lowercase; mixed case must be a valid checksum
    return v


# --- tree construction ---------------------------------------------------------------------


def sorted_distinct_rows(rows: np.ndarray) -> np.ndarray:
    """The distinct rows of an (n, 32) uint8 matrix in ascending byte order."""
    if not len(rows):
        return rows
    s = rows[_sort_order(rows)]
    return s[np.r_[True, (s[1:] != s[:-1]).any(axis=1)]]


def _sort_order(hashes: np.ndarray) -> np.ndarray:
    """Stable ascending order of (n, 32) uint8 hashes by bytes (JS ``compare`` + stable sort)."""
    words = np.ascontiguousarray(hashes).view(">u8")  # (n, 4) big-endian words
    return np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))


#: Rows hashed per step: bounds the byte copies and digest lists of a level or of a leaf
#: matrix to a few MB whatever the tree size (a million leaves hashed whole cost ~200 MB).
_HASH_ROWS = 1 << 16

#: From this many rows, leaf hashes and inner nodes are computed by the compiled loops of
#: :mod:`._keccak` (~3x faster: 0.8 -> 0.3 s for a 200k-leaf tree; the same digests); smaller
#: trees (proofs, rewards, tests) stay on the call-per-hash path, which needs no compiler.
#: The loops read the state's lanes as little-endian bytes: elsewhere every tree takes the
#: call-per-hash path.
_COMPILED_ROWS = 1 << 12 if sys.byteorder == "little" else 1 << 62


def _build_nodes(leaves: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Flat OpenZeppelin tree of (n, 32) leaf hashes (taken in ``order`` when given, without
    a sorted copy): leaves reversed at the end, root at 0."""
    n = leaves.shape[0]
    if n == 0:
        raise AnchoringError("a Merkle tree needs at least one leaf")
    size = 2 * n - 1
    tree = np.empty((size, 32), dtype=np.uint8)
    if order is None:
        tree[n - 1 :] = leaves[::-1]
    else:
        np.take(leaves, order[::-1], axis=0, out=tree[n - 1 :])
    last = n - 2
    if last < 0:
        return tree
    if n >= _COMPILED_ROWS:
        from datanet.anchoring._keccak import fill_inner_nodes

        fill_inner_nodes(tree, n)
        return tree
    # Internal nodes are 0..n-2. Depth d holds indices [2^d - 1, 2^(d+1) - 2]; children of a
    # contiguous run of nodes at one depth are a contiguous run one depth lower, so each depth
    # is a few vectorised passes (child order by byte comparison, then keccak per row).
    depth = int(last + 1).bit_length() - 1
    while depth >= 0:
        lo = (1 << depth) - 1
        hi = min((1 << (depth + 1)) - 2, last)
        for start in range(lo, hi + 1, _HASH_ROWS):
            stop = min(start + _HASH_ROWS, hi + 1)
            kids = tree[2 * start + 1 : 2 * stop + 1].reshape(-1, 2, 32)
            a, b = kids[:, 0], kids[:, 1]
            first = (a != b).argmax(axis=1)
            rows = np.arange(a.shape[0])
            swap = a[rows, first] > b[rows, first]
            buf = np.where(swap[:, None, None], kids[:, ::-1], kids).tobytes()
            digests = b"".join([_keccak(buf[i : i + 64]) for i in range(0, len(buf), 64)])
            tree[start:stop] = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32)
        depth -= 1
    return tree


def _double_keccak_rows(encoded: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``keccak256(keccak256(row))`` for each row of an (n, k) uint8 array (into ``out``)."""
    n, width = encoded.shape
    out = np.empty((n, 32), dtype=np.uint8) if out is None else out
    if n >= _COMPILED_ROWS and out.flags.c_contiguous:
        from datanet.anchoring._keccak import leaf_hashes

        leaf_hashes(np.ascontiguousarray(encoded), out)
        return out
    k = _keccak
    for lo in range(0, n, _HASH_ROWS):
        buf = encoded[lo : lo + _HASH_ROWS].tobytes()
        digests = b"".join([k(k(buf[i : i + width])) for i in range(0, len(buf), width)])
        out[lo : lo + _HASH_ROWS] = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32)
    return out


@dataclass(frozen=True)
class MultiProof:
    """A multiproof: leaf values in the order they are consumed, sibling hashes and flags."""

    leaves: tuple[Any, ...]
    proof: tuple[str, ...]
    proof_flags: tuple[bool, ...]

    def to_json(self) -> dict[str, Any]:
        """Same keys as the JS library (``proofFlags``)."""
        return {
            "leaves": list(self.leaves), "proof": list(self.proof),
            "proofFlags": list(self.proof_flags),
        }


class _WordValues(Sequence[list[str]]):
    """Leaf values of a batch tree as byte matrices until asked for: the (n, 64) datanet key
    and batch id words (a broadcast view of one row in a batch tree: no bytes per leaf) and
    the (n, 96) words of the contribution id, contributor and content hash."""

    _HEAD = 64

    def __init__(self, head: np.ndarray, tail: np.ndarray):
        self._head = head
        self._tail = tail

    @classmethod
    def of_words(cls, words: np.ndarray) -> _WordValues:
        """From (n, 160) encoded leaves; a head equal on every row is kept once."""
        head = words[:, : cls._HEAD]
        if len(words) and (head == head[0]).all():
            head = np.broadcast_to(head[0], head.shape)
        else:
            head = np.ascontiguousarray(head)
        return cls(head, np.ascontiguousarray(words[:, cls._HEAD :]))

    def __len__(self) -> int:
        return self._tail.shape[0]

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return _row_value(self._head[i].tobytes() + self._tail[i].tobytes())

    def words(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The (k, 160) encoded leaves ``lo:hi``."""
        return np.concatenate([self._head[lo:hi], self._tail[lo:hi]], axis=1)

    def leaf_hashes(self) -> np.ndarray:
        """(n, 32) leaf hashes, encoded a slice at a time."""
        n = len(self)
        out = np.empty((n, 32), dtype=np.uint8)
        for lo in range(0, n, _HASH_ROWS):
            _double_keccak_rows(self.words(lo, lo + _HASH_ROWS), out[lo : lo + _HASH_ROWS])
        return out

    def field(self, pos: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The bytes of one field for leaves ``lo:hi``: (k, 32), or (k, 20) for an address."""
        start = pos * 32 + (12 if LEAF_ENCODING[pos] == "address" else 0)
        src, start = ((self._head, start) if start < self._HEAD
                      else (self._tail, start - self._HEAD))
        return src[lo:hi, start : start + (32 - start % 32)]

    def column_hex(self, pos: int, lo: int = 0, hi: int | None = None) -> list[str]:
        """Hex strings of one field for leaves ``lo:hi`` (default all; vectorised)."""
        col = np.ascontiguousarray(self.field(pos, lo, hi))
        width = col.shape[1] * 2
        h = col.tobytes().hex()
        return ["0x" + h[i : i + width] for i in range(0, len(h), width)]

    def tolist(self) -> list[list[str]]:
        cols = [self.column_hex(p) for p in range(len(LEAF_ENCODING))]
        return [list(v) for v in zip(*cols, strict=True)]


#: The two lowercase hex digits of each byte value, as one 16-bit cell (a lookup per byte
#: instead of one per nibble: ~3x faster).
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)


def _hex_cells(words: np.ndarray) -> np.ndarray:
    """(k, 2w) lowercase ASCII hex of a (k, w) byte matrix."""
    return _HEX_PAIRS[words].view(np.uint8).reshape(words.shape[0], 2 * words.shape[1])


def _decimal_cells(numbers: np.ndarray) -> np.ndarray:
    """(k, d) ASCII decimals of non-negative integers, right-aligned in the widest one's d
    digits; the leading places of shorter ones are 0 bytes (dropped by :func:`_ascii_rows`)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    width = len(str(int(numbers.max()))) if len(numbers) else 1
    out = np.empty((len(numbers), width), dtype=np.uint8)
    for j in range(width):
        place = 10 ** (width - 1 - j)
        out[:, j] = 48 + (numbers // place) % 10
        if j < width - 1:
            out[numbers < place, j] = 0
    return out


def _ascii_rows(pieces: Sequence[bytes | np.ndarray], *, strip: bool = False) -> str:
    """One row per matrix row of ``pieces`` (literal bytes, the same on every row, and (k, w)
    ASCII matrices) side by side, rows joined by commas; ``strip``: 0 bytes are dropped."""
    k = next(p.shape[0] for p in pieces if isinstance(p, np.ndarray))
    cells = [np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (k, len(p)))
             if isinstance(p, bytes) else p for p in pieces]
    comma = np.broadcast_to(np.frombuffer(b",", dtype=np.uint8), (k, 1))
    flat = np.concatenate([*cells, comma], axis=1).ravel()[:-1]
    if strip:
        flat = flat[flat != 0]
    return flat.tobytes().decode("ascii")


def _row_value(row: bytes) -> list[str]:
    out = []
    for pos, tp in enumerate(LEAF_ENCODING):
        word = row[pos * 32 : (pos + 1) * 32]
        out.append(_hex(word[12:] if tp == "address" else word))
    return out


class StandardMerkleTree:
    """OpenZeppelin ``StandardMerkleTree``: build with :meth:`of`, restore with :meth:`load`."""

    def __init__(
        self,
        nodes: np.ndarray,
        values: Sequence[Any],
        tree_index: np.ndarray,
        leaf_encoding: Sequence[str],
    ):
        self._nodes = nodes
        self._values = values
        self._tree_index = tree_index
        self.leaf_encoding: tuple[str, ...] = tuple(leaf_encoding)
        self._hash_lookup: dict[bytes, int] | None = None
        self._field_lookup: dict[int, dict[str, int]] = {}
        self._hex_nodes: list[str] | None = None

    # construction ---------------------------------------------------------------------

    @classmethod
    def of(
        cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], *,
        sort_leaves: bool = True,
    ) -> StandardMerkleTree:
        """Build a tree of ``values`` (JSON-style: hex strings, decimal strings or ints)."""
        values = [list(v) for v in values]
        if not values:
            raise AnchoringError("a Merkle tree needs at least one leaf")
        hashes = np.frombuffer(
            b"".join(standard_leaf_hash(leaf_encoding, v) for v in values), dtype=np.uint8
        ).reshape(-1, 32)
        return cls._from_hashes(hashes, values, leaf_encoding, sort_leaves)

    @classmethod
    def of_encoded(
        cls, encoded: np.ndarray, values: Sequence[Any], leaf_encoding: Sequence[str],
    ) -> StandardMerkleTree:
        """Build a tree from leaves already ``abi.encode``d as rows of an (n, k) uint8 array
        (static types only: k = 32 x fields), ``values`` being their JSON values in the same
        order. The vectorised path for large trees (a million leaves in seconds)."""
        if encoded.ndim != 2 or encoded.shape[0] != len(values) or encoded.shape[1] != (
                32 * len(leaf_encoding)):
            raise AnchoringError(
                f"encoded leaves of shape {encoded.shape} do not match {len(values)} values "
                f"of {len(leaf_encoding)} static fields"
            )
        if not len(values):
            raise AnchoringError("a Merkle tree needs at least one leaf")
        return cls._from_hashes(_double_keccak_rows(encoded), values, leaf_encoding, True)

    @classmethod
    def _from_hashes(
        cls, hashes: np.ndarray, values: Sequence[Any], leaf_encoding: Sequence[str],
        sort_leaves: bool,
    ) -> StandardMerkleTree:
        n = hashes.shape[0]
        order = _sort_order(hashes) if sort_leaves else np.arange(n)
        nodes = _build_nodes(hashes, order)
        tree_index = np.empty(n, dtype=np.int64)
        tree_index[order] = (2 * n - 2) - np.arange(n)
        return cls(nodes, values, tree_index, leaf_encoding)

    @classmethod
    def load(cls, data: dict[str, Any], *, validate: bool = True) -> StandardMerkleTree:
        """Restore a tree from its ``standard-v1`` dump and check it (JS ``validate``);
        ``validate=False`` skips the full re-hash when the caller checks the root itself."""
        if data.get("format") != FORMAT:
            raise AnchoringError(
                f"Merkle dump format {data.get('format')!r} is not supported; "
                f"expected {FORMAT!r}"
            )
        if "leafEncoding" not in data:
            raise AnchoringError("Merkle dump has no 'leafEncoding'")
        tree_hex = data["tree"]
        nodes = np.frombuffer(
            b"".join(_unhex32(h) for h in tree_hex), dtype=np.uint8
        ).reshape(-1, 32)
        values = [v["value"] for v in data["values"]]
        tree_index = np.array([int(v["treeIndex"]) for v in data["values"]], dtype=np.int64)
        encoding = tuple(data["leafEncoding"])
        if tuple(encoding) == LEAF_ENCODING and values:
            values = _WordValues.of_words(_words_from_values(values))
        tree = cls(nodes, values, tree_index, encoding)
        tree._hex_nodes = [h.lower() for h in tree_hex]
        if validate:
            tree.validate()
        return tree

    @classmethod
    def loads(cls, text: str | bytes, *, validate: bool = True) -> StandardMerkleTree:
        """:meth:`load` from JSON text."""
        return cls.load(json.loads(text), validate=validate)

    # accessors ------------------------------------------------------------------------

    @property
    def root(self) -> str:
        """Root as ``0x`` hex."""
        return _hex(self._nodes[0].tobytes())

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> Any:
        """Leaf value at value index ``index``."""
        return self._values[index]

    def entries(self) -> Iterator[tuple[int, Any]]:
        """(value index, value) pairs in insertion order."""
        for i in range(len(self)):
            yield i, self._values[i]

    @property
    def values(self) -> list[Any]:
        """All leaf values in insertion order."""
        tolist = getattr(self._values, "tolist", None)
        return tolist() if tolist else list(self._values)

    def tree_index(self, index: int) -> int:
        """Position of value ``index``'s leaf in the flat tree."""
        return int(self._tree_index[index])

    def node(self, tree_index: int) -> str:
        """Hash at a tree index."""
        return _hex(self._nodes[tree_index].tobytes())

    def node_bytes(self) -> bytes:
        """Every node's 32 bytes in flat-tree order (the dump's ``tree``), concatenated."""
        return self._nodes.tobytes()

    def tree_indices(self) -> np.ndarray:
        """Flat-tree position of every value's leaf, in value order (int64)."""
        return np.asarray(self._tree_index, dtype=np.int64).copy()

    def _hex_tree(self) -> list[str]:
        if self._hex_nodes is None:
            h = self._nodes.tobytes().hex()
            self._hex_nodes = ["0x" + h[i : i + 64] for i in range(0, len(h), 64)]
        return self._hex_nodes

    def leaf_hash(self, value: Sequence[Any]) -> str:
        """Leaf hash of a value under this tree's encoding."""
        return _hex(standard_leaf_hash(self.leaf_encoding, value))

    def leaf_lookup(self, value: Sequence[Any]) -> int:
        """Value index of a leaf value; raises if it is not in the tree."""
        if self._hash_lookup is None:
            leaf_bytes = self._nodes[self._tree_index].tobytes()
            self._hash_lookup = {
                leaf_bytes[i * 32 : (i + 1) * 32]: i for i in range(len(self._tree_index))
            }
        idx = self._hash_lookup.get(standard_leaf_hash(self.leaf_encoding, value))
        if idx is None:
            raise AnchoringError(f"leaf {list(value)!r} is not in the tree")
        return idx

    def index_of(self, field: int | str, value: str) -> int:
        """Value index of the leaf whose field (position or :data:`LEAF_FIELDS` name) equals
        ``value`` (hex, case-insensitive). Used to find a contribution id in a batch tree."""
        pos = LEAF_FIELDS.index(field) if isinstance(field, str) else field
        lookup = self._field_lookup.get(pos)
        if lookup is None:
            if isinstance(self._values, _WordValues):
                col = self._values.column_hex(pos)
            else:
                col = [str(v[pos]).lower() for v in self._values]
            lookup = {h: i for i, h in enumerate(col)}
            self._field_lookup[pos] = lookup
        idx = lookup.get(value.lower())
        if idx is None:
            name = LEAF_FIELDS[pos] if self.leaf_encoding == LEAF_ENCODING else f"field {pos}"
            raise AnchoringError(f"no leaf with {name} {value!r} in the tree (root {self.root})")
        return idx

    # proofs ---------------------------------------------------------------------------

    def _value_index(self, leaf: int | Sequence[Any]) -> int:
        if isinstance(leaf, (int, np.integer)):
            if not 0 <= leaf < len(self):
                raise AnchoringError(f"leaf index {leaf} out of bounds (tree has {len(self)})")
            return int(leaf)
        return self.leaf_lookup(leaf)

    def get_proof(self, leaf: int | Sequence[Any]) -> list[str]:
        """Sibling hashes from the leaf (value index or value) up to the root."""
        i = int(self._tree_index[self._value_index(leaf)])
        nodes = self._hex_nodes
        proof = []
        while i > 0:
            s = i + 1 if i % 2 else i - 1
            proof.append(nodes[s] if nodes is not None else _hex(self._nodes[s].tobytes()))
            i = (i - 1) // 2
        return proof

    def all_proofs(self) -> list[list[str]]:
        """Proof of every value, in value order (fast path for publishing all proofs)."""
        nodes = self._hex_tree()
        out = []
        for i in self._tree_index.tolist():
            proof = []
            while i > 0:
                proof.append(nodes[i + 1 if i % 2 else i - 1])
                i = (i - 1) // 2
            out.append(proof)
        return out

    def get_multi_proof(self, leaves: Sequence[int | Sequence[Any]]) -> MultiProof:
        """Multiproof of several leaves (values or value indices), like JS ``getMultiProof``."""
        indices = sorted(
            (int(self._tree_index[self._value_index(x)]) for x in leaves), reverse=True
        )
        if any(a == b for a, b in itertools.pairwise(indices)):
            raise AnchoringError("cannot prove a duplicated leaf")
        stack = list(indices)
        proof: list[str] = []
        flags: list[bool] = []
        while stack and stack[0] > 0:
            j = stack.pop(0)
            s = j + 1 if j % 2 else j - 1
            p = (j - 1) // 2
            if stack and s == stack[0]:
                flags.append(True)
                stack.pop(0)
            else:
                flags.append(False)
                proof.append(self.node(s))
            stack.append(p)
        if not indices:
            proof.append(self.node(0))
        lookup = {int(t): v for v, t in enumerate(self._tree_index.tolist())}
        values = tuple(self._values[lookup[i]] for i in indices)
        return MultiProof(values, tuple(proof), tuple(flags))

    def verify(self, leaf: int | Sequence[Any], proof: Sequence[str]) -> bool:
        """True if ``proof`` proves ``leaf`` (value or value index) against this root."""
        value = self._values[self._value_index(leaf)] if isinstance(leaf, int) else leaf
        return StandardMerkleTree.verify_root(self.root, self.leaf_encoding, value, proof)

    def verify_multi_proof(self, multiproof: MultiProof) -> bool:
        """True if ``multiproof`` proves its leaves against this root."""
        hashes = [standard_leaf_hash(self.leaf_encoding, v) for v in multiproof.leaves]
        try:
            root = process_multi_proof(hashes, multiproof.proof, multiproof.proof_flags)
        except (AnchoringError, IndexError):
            return False
        return _hex(root) == self.root

    @staticmethod
    def verify_root(
        root: str, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[str]
    ) -> bool:
        """Off-chain check of one proof without the tree (JS ``StandardMerkleTree.verify``)."""
        try:
            leaf = standard_leaf_hash(leaf_encoding, value)
            return _hex(process_proof(leaf, proof)) == root.lower()
        except (AnchoringError, ValueError, TypeError, OverflowError):
            return False

    # integrity and serialisation -------------------------------------------------------

    def validate(self) -> None:
        """Check every leaf hash and every inner node (raises :class:`AnchoringError`)."""
        n_nodes = self._nodes.shape[0]
        n = len(self._values)
        if n_nodes != 2 * n - 1 or n == 0:
            raise AnchoringError(
                f"Merkle tree has {n_nodes} nodes for {n} values; expected {2 * n - 1}"
            )
        ti = self._tree_index
        if ti.min() < n - 1 or ti.max() > n_nodes - 1 or len(np.unique(ti)) != n:
            raise AnchoringError("Merkle tree value tree indices are not distinct leaf indices")
        if isinstance(self._values, _WordValues):
            leaf_hashes = self._values.leaf_hashes()
        else:
            leaf_hashes = np.frombuffer(
                b"".join(standard_leaf_hash(self.leaf_encoding, v) for v in self._values),
                dtype=np.uint8,
            ).reshape(-1, 32)
        bad = np.nonzero((self._nodes[ti] != leaf_hashes).any(axis=1))[0]
        if bad.size:
            raise AnchoringError(
                f"Merkle tree does not contain the expected value at index {int(bad[0])}"
            )
        leaves = self._nodes[n - 1 :][::-1]
        if not np.array_equal(_build_nodes(np.ascontiguousarray(leaves)), self._nodes):
            raise AnchoringError("Merkle tree is invalid: an inner node does not match")

    def dump(self) -> dict[str, Any]:
        """The ``standard-v1`` JSON object (same keys as the JS library)."""
        ti = self._tree_index.tolist()
        vals = self.values
        return {
            "format": FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": list(self._hex_tree()),
            "values": [{"value": v, "treeIndex": t} for v, t in zip(vals, ti, strict=True)],
        }

    def dumps(self) -> str:
        """Compact JSON text of :meth:`dump` (``json.dumps(self.dump(), separators=(",", ":"))``,
        built by :meth:`dump_chunks`)."""
        return "".join(self.dump_chunks())

    def dump_chunks(self, rows: int = 1 << 14) -> Iterator[str]:
        """The text of :meth:`dumps` in pieces of about ``rows`` nodes or leaves, so a writer
        holds one piece at a time, not the whole dump (~460 bytes per leaf). 16,384 rows: as
        fast as 65,536 and ~28 MB of strings per piece instead of ~110 MB (measured at 300k
        leaves), which was the top of a 1M-record run's commit.

        A batch tree's nodes and leaves (byte matrices) are written as ASCII byte matrices, one
        row per node or leaf (:func:`_ascii_rows`), not a Python string per node or leaf
        (200k leaves, 97 MB: 0.44 -> ~0.2 s).
        """
        if not isinstance(self._values, _WordValues):
            yield json.dumps(self.dump(), separators=(",", ":"))
            return
        yield ('{"format":' + json.dumps(FORMAT) + ',"leafEncoding":'
               + json.dumps(list(self.leaf_encoding), separators=(",", ":")) + ',"tree":[')
        nodes = len(self._nodes)
        for lo in range(0, nodes, rows):
            yield ("," if lo else "") + _ascii_rows(
                [b'"0x', _hex_cells(self._nodes[lo:lo + rows]), b'"'])
        yield '],"values":['
        n = len(self._tree_index)
        for lo in range(0, n, rows):
            pieces: list[bytes | np.ndarray] = [b'{"value":[']
            for p in range(len(LEAF_ENCODING)):
                pieces += [b'"0x' if p == 0 else b'","0x',
                           _hex_cells(self._values.field(p, lo, lo + rows))]
            index = _decimal_cells(self._tree_index[lo:lo + rows])
            pieces += [b'"],"treeIndex":', index, b"}"]
            yield ("," if lo else "") + _ascii_rows(pieces, strip=not index.all())
        yield "]}"

    def render(self) -> str:
        """Text drawing of the tree (like JS ``render``)."""
        nodes = self._hex_tree()
        lines: list[str] = []
        stack: list[tuple[int, str, str]] = [(0, "", "")]
        while stack:
            i, head, tail = stack.pop()
            lines.append(f"{head}{i}) {nodes[i]}")
            kids = [c for c in (2 * i + 1, 2 * i + 2) if c < len(nodes)]
            for k, c in reversed(list(enumerate(kids))):
                last = k == len(kids) - 1
                branch, indent = ("└─ ", "   ") if last else ("├─ ", "│  ")
                stack.append((c, tail + branch, tail + indent))
        return "\n".join(lines)


# --- batch trees ---------------------------------------------------------------------------


def hex_matrix(col: pa.Array | pa.ChunkedArray, name: str, nbytes: int) -> np.ndarray:
    """Decode a column of ``0x`` hex strings of ``nbytes`` bytes into an (n, nbytes) array
    (on the Arrow buffers: no Python string per row); ``name`` names the column in errors."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.empty((0, nbytes), dtype=np.uint8)
    width = 2 + 2 * nbytes
    if arr.null_count:
        raise AnchoringError(f"column {name!r} has {arr.null_count} null values")
    lengths = pc.binary_length(arr)
    ok = pc.and_(pc.equal(lengths, width), pc.starts_with(arr, "0x"))
    if not pc.all(ok).as_py():
        bad = arr.filter(pc.invert(ok))[0].as_py()
        raise AnchoringError(
            f"column {name!r} value {bad!r} must be 0x followed by {2 * nbytes} hex digits"
        )
    wide = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=wide)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    digits = data.reshape(n, width)[:, 2:].tobytes().decode("ascii")
    try:
        raw = bytes.fromhex(digits)
    except ValueError as exc:
        raise AnchoringError(f"column {name!r} has a value that is not hex: {exc}") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, nbytes)


def _words_from_values(values: Sequence[Sequence[Any]]) -> np.ndarray:
    """(n, 160) encoded batch leaves from JSON values (used when loading a dump)."""
    table = pa.table({
        name: pa.array([str(v[i]) for v in values], pa.string())
        for i, name in enumerate(LEAF_FIELDS)
    })
    return _encode_columns(
        *(hex_matrix(table[f], f, 20 if t == "address" else 32)
          for f, t in zip(LEAF_FIELDS, LEAF_ENCODING, strict=True))
    )


def _encode_columns(*cols: np.ndarray) -> np.ndarray:
    """abi.encode of static words = concatenation of left-padded 32-byte words per row."""
    n = cols[0].shape[0]
    words = np.zeros((n, 32 * len(cols)), dtype=np.uint8)
    for pos, col in enumerate(cols):
        words[:, (pos + 1) * 32 - col.shape[1] : (pos + 1) * 32] = col
    return words


def batch_leaf(
    datanet_id: str, batch_id: str, contribution_id: str, contributor: str, content_hash: str
) -> list[str]:
    """Leaf value of one accepted contribution, in the dump's canonical (lowercase) form."""
    return [
        _hex(datanet_key(datanet_id)), batch_id.lower(), contribution_id.lower(),
        contributor.lower(), content_hash.lower(),
    ]


def batch_tree(datanet_id: str, batch_id: str, accepted: pa.Table | Iterable[pa.Table], *,
               rows: int | None = None) -> StandardMerkleTree | None:
    """Merkle tree of a batch's accepted records, or None when nothing was accepted.

    ``accepted`` (a table, or its parts in order, e.g. one per file: each is decoded and
    dropped in turn; with their total ``rows`` known the leaf words are filled in place, not
    concatenated) needs string columns ``contribution_id``, ``contributor`` and
    ``content_hash``. Each leaf is ``(datanetKey, batchId, contributionId, contributor,
    contentHash)`` with types :data:`LEAF_ENCODING`, so a proof binds the record to its
    datanet and batch. Values are stored lowercase in the dump.
    """
    head = np.concatenate([np.frombuffer(datanet_key(datanet_id), dtype=np.uint8),
                           np.frombuffer(_unhex32(batch_id), dtype=np.uint8)])
    width = 32 * len(LEAF_ENCODING)
    # Only the (n, 96) words that differ per leaf are kept; the key and batch id words are
    # one row. Each part is decoded and hashed _HASH_ROWS rows at a time into arrays of the
    # hinted size, so the transient copies stay a few MB at any batch size.
    tail_all = np.empty((rows, width - 64), dtype=np.uint8) if rows else None
    hashes_all = np.empty((rows, 32), dtype=np.uint8) if rows else None
    tail_parts, hash_parts = [], []
    filled = 0
    for table in [accepted] if isinstance(accepted, pa.Table) else accepted:
        for c in ("contribution_id", "contributor", "content_hash"):
            if table.num_rows and c not in table.column_names:
                raise AnchoringError(
                    f"accepted table has no column {c!r}; columns: {table.column_names}"
                )
        for lo in range(0, table.num_rows, _HASH_ROWS):
            part = table.slice(lo, _HASH_ROWS)
            n = part.num_rows
            words = _encode_columns(
                np.broadcast_to(head[:32], (n, 32)),
                np.broadcast_to(head[32:], (n, 32)),
                hex_matrix(part["contribution_id"], "contribution_id", 32),
                hex_matrix(part["contributor"], "contributor", 20),
                hex_matrix(part["content_hash"], "content_hash", 32),
            )
            if tail_all is not None and hashes_all is not None and filled + n > len(tail_all):
                tail_parts.append(tail_all[:filled])  # the hint was short
                hash_parts.append(hashes_all[:filled])
                tail_all = hashes_all = None
            if tail_all is not None and hashes_all is not None:
                tail_all[filled:filled + n] = words[:, 64:]
                _double_keccak_rows(words, hashes_all[filled:filled + n])
            else:
                tail_parts.append(np.ascontiguousarray(words[:, 64:]))
                hash_parts.append(_double_keccak_rows(words))
            filled += n
    if filled == 0:
        return None
    if tail_all is not None and hashes_all is not None:
        tail, hashes = tail_all[:filled], hashes_all[:filled]
    else:
        tail = np.concatenate(tail_parts) if len(tail_parts) > 1 else tail_parts[0]
        hashes = np.concatenate(hash_parts) if len(hash_parts) > 1 else hash_parts[0]
    values = _WordValues(np.broadcast_to(head, (filled, 64)), tail)
    return StandardMerkleTree._from_hashes(hashes, values, LEAF_ENCODING, True)
