"""``datanet verify-history``: every committed root, the prevRoot chain, the on-chain anchors
and (by default) the committed data itself.

The data check re-hashes every file a manifest names (sha256 and size), recomputes every
accepted row's ``content_hash`` (keccak256 of the normalised text), ``contribution_id`` and
leaf, rebuilds each batch tree and compares its root with the manifest and the anchor. So an
edited record is caught even when the editor also rewrote the manifest's sha256: its content
hash, id or leaf no longer lead to the anchored root.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datanet.anchoring.client import ZERO32, open_client
from datanet.anchoring.config import anchoring_config
from datanet.anchoring.merkle import StandardMerkleTree, batch_tree
from datanet.errors import AnchoringError
from datanet.privacy.normalise import normalise
from datanet.schemas.ids import content_hashes, contribution_ids, datanet_key

if TYPE_CHECKING:
    from datanet.anchoring.client import ChainClient
    from datanet.schemas.manifest import Manifest
    from datanet.store.layout import DatanetStore

__all__ = ["verify_history", "check_attribution_shard"]


def _check_tree(store: DatanetStore, m: Manifest, problems: list[str]) -> None:
    path = store.path(f"trees/{m.batch_id}.json")
    if not path.exists():
        problems.append(f"batch {m.seq}: trees/{m.batch_id}.json is missing")
        return
    try:
        tree = StandardMerkleTree.loads(path.read_bytes())  # full re-hash of every node
    except (AnchoringError, ValueError, KeyError) as exc:
        problems.append(f"batch {m.seq}: tree file is invalid: {exc}")
        return
    if tree.root != m.merkle_root.lower():
        problems.append(f"batch {m.seq}: tree root {tree.root} != manifest {m.merkle_root}")
    if len(tree) != m.leaf_count:
        problems.append(f"batch {m.seq}: tree has {len(tree)} leaves, manifest {m.leaf_count}")
    key = "0x" + datanet_key(m.datanet).hex()
    if len(tree) and (tree.at(0)[0] != key or tree.at(0)[1] != m.batch_id.lower()):
        problems.append(f"batch {m.seq}: leaves are not bound to this datanet and batch")
    paths = m.paths("accepted")
    if paths:
        try:
            ids = pa.concat_arrays([
                pq.read_table(store.abs(p), filesystem=store.arrow_fs,
                              columns=["contribution_id"])["contribution_id"]
                .combine_chunks().cast(pa.string()) for p in paths
            ]).to_pylist()
        except (OSError, pa.ArrowException, KeyError) as exc:
            problems.append(f"batch {m.seq}: accepted records cannot be read to compare "
                            f"with the tree ({exc})")
            return
        ids = [str(i) for i in ids]
        tree_ids = sorted(v[2] for v in tree.values)
        if sorted(i.lower() for i in ids) != tree_ids:
            stored, leaves = {i.lower() for i in ids}, set(tree_ids)
            gone = sorted(leaves - stored)[:_MAX_ROWS_NAMED]
            extra = sorted(stored - leaves)[:_MAX_ROWS_NAMED]
            problems.append(f"batch {m.seq}: tree leaves differ from the accepted records "
                            f"(in the tree only: {gone or '-'}; in the files only: "
                            f"{extra or '-'})")


#: Rows named per file and check before the rest are summarised as a count.
_MAX_ROWS_NAMED = 5


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _rewritten_ids(store: DatanetStore, manifests: list[Manifest]) -> set[str]:
    """Contribution ids whose stored text a validator rewrote (PII redacted / pseudonymised).

    Their ``content_hash`` is of the text as submitted, which is deliberately not stored, so it
    cannot be recomputed from the stored text; their id, leaf and root still are checked.
    """
    out: set[str] = set()
    for m in manifests:
        for p in m.paths("votes"):
            path = store.path(p)
            if not path.is_file():
                continue
            votes = pq.read_table(str(path), filesystem=store.arrow_fs,
                                  columns=["contribution_id", "validator", "details"])
            mask = pc.and_(pc.equal(votes["validator"], "pii"), pc.is_valid(votes["details"]))
            for cid, details in zip(votes.filter(mask)["contribution_id"].to_pylist(),
                                    votes.filter(mask)["details"].to_pylist(), strict=True):
                try:
                    spans = json.loads(details).get("spans", [])
                except (ValueError, AttributeError):
                    continue
                if any(len(s) > 3 and s[3] != "allow" for s in spans):
                    out.add(cid.lower())
    return out


def _check_files(store: DatanetStore, m: Manifest, problems: list[str]) -> bool:
    """sha256 and size of every file of the batch; False when a file cannot be read."""
    readable = True
    for kind, entries in m.files.items():
        for f in entries:
            path = store.path(f.path)
            where = f"batch {m.seq} ({m.batch_id}): {kind} file {f.path}"
            if not path.is_file():
                problems.append(f"{where} is missing")
                readable = False
                continue
            size = path.stat().st_size
            if size != f.bytes:
                problems.append(f"{where} has {size} bytes, its manifest says {f.bytes}")
            digest = _sha256(path)
            if digest != f.sha256:
                problems.append(f"{where}: sha256 {digest} != manifest {f.sha256}")
    return readable


def _name_rows(problems: list[str], where: str, rows: pa.Array, ids: list[str], what: str,
               ) -> None:
    idx = rows.to_pylist()
    for i in idx[:_MAX_ROWS_NAMED]:
        problems.append(f"{where} row {i} (contribution {ids[i]}): {what}")
    if len(idx) > _MAX_ROWS_NAMED:
        problems.append(f"{where}: {len(idx) - _MAX_ROWS_NAMED} more rows: {what}")


def _check_rows(store: DatanetStore, m: Manifest, rewritten: set[str], problems: list[str]) -> int:
    """Recompute content hash, id and leaf of every accepted row and the batch root.

    Returns the number of rows whose content hash was not recomputable (rewritten text).
    """
    tables = []
    skipped = 0
    for rel in m.paths("accepted"):
        where = f"batch {m.seq} ({m.batch_id}): accepted file {rel}"
        try:
            t = pq.read_table(store.abs(rel), filesystem=store.arrow_fs)
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{where} cannot be read as Parquet: {exc}")
            return skipped
        missing = {"text", "contributor", "content_hash", "contribution_id"} - set(t.column_names)
        if missing:
            problems.append(f"{where} lacks columns {sorted(missing)}")
            return skipped
        entry = next(f for f in m.files["accepted"] if f.path == rel)
        if t.num_rows != entry.rows:
            problems.append(f"{where} has {t.num_rows} rows, its manifest says {entry.rows}")
        t = t.select(["contribution_id", "contributor", "content_hash", "text"])
        ids = [str(i).lower() for i in t["contribution_id"].to_pylist()]
        stored_hash = pc.utf8_lower(t["content_hash"].combine_chunks())
        text = t["text"].combine_chunks()
        # null text never hashes (a record is accepted with its text); "" keeps rows aligned
        recomputed = pa.array(content_hashes(normalise(pc.fill_null(text, "")).to_pylist()),
                              pa.string())
        exempt = pa.array([i in rewritten for i in ids], pa.bool_())
        differs = pc.fill_null(pc.not_equal(recomputed, stored_hash), True)
        bad_hash = pc.or_(pc.and_(differs, pc.invert(exempt)), pc.is_null(text))
        skipped += pc.sum(pc.and_(differs, exempt)).as_py() or 0
        _name_rows(problems, where, pc.indices_nonzero(bad_hash), ids,
                   "its text does not hash to its content_hash (the text was edited)")
        try:
            cids = contribution_ids(m.datanet, t["contributor"].to_pylist(),
                                    stored_hash.to_pylist())
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: a contributor or content_hash is malformed ({exc})")
            return skipped
        bad_id = pc.not_equal(pa.array(cids, pa.string()), pa.array(ids, pa.string()))
        _name_rows(problems, where, pc.indices_nonzero(bad_id), ids,
                   "contribution_id != keccak256(datanetKey, contributor, content_hash)")
        tables.append(t.drop_columns(["text"]))
    if not tables:
        if m.merkle_root:
            problems.append(f"batch {m.seq} ({m.batch_id}): root {m.merkle_root} but no "
                            "accepted file")
        return skipped
    try:
        tree = batch_tree(m.datanet, m.batch_id, pa.concat_tables(tables))
    except AnchoringError as exc:
        problems.append(f"batch {m.seq} ({m.batch_id}): leaves cannot be rebuilt: {exc}")
        return skipped
    root = tree.root if tree is not None else None
    if root != (m.merkle_root.lower() if m.merkle_root else None):
        problems.append(f"batch {m.seq} ({m.batch_id}): the root rebuilt from its accepted "
                        f"rows is {root}, the manifest says {m.merkle_root}")
    return skipped


def check_attribution_shard(store: DatanetStore, m: Manifest, problems: list[str]) -> str | None:
    """The batch's attribution index shard has the sha256 and size its manifest (or
    ``datanet index``'s pointer) names, and indexes every accepted record; a note when the
    batch predates attribution and has no shard."""
    import hashlib

    from datanet.attribution.index import load_shard, shard_entry

    if not m.files.get("accepted"):
        return None
    entry = shard_entry(store, m)
    if entry is None:
        return f"batch {m.seq}: no attribution index shard (run `datanet index`)"
    path = store.path(entry.path)
    if not path.exists():
        problems.append(f"batch {m.seq}: attribution shard {entry.path} is missing")
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256 or path.stat().st_size != entry.bytes:
        problems.append(f"batch {m.seq}: attribution shard {entry.path} does not match the "
                        f"sha256 / size its manifest names")
        return None
    shard = load_shard(store, m, entry)
    accepted = sum(f.rows for f in m.files["accepted"])
    if shard.records != accepted:
        problems.append(f"batch {m.seq}: attribution shard indexes {shard.records} records, "
                        f"the batch accepted {accepted}")
    return None


def verify_history(store: DatanetStore, *, client: ChainClient | None = None, data: bool = True,
                   ) -> tuple[list[str], list[str]]:
    """(problems, report lines) for the whole datanet; ``data`` adds the data check (sha256 of
    every committed file; content hash, id and leaf of every accepted row; rebuilt roots)."""
    problems: list[str] = []
    lines: list[str] = []
    manifests = store.manifests()
    problems.extend(store.problems)
    cfg = anchoring_config(store.spec)
    anchored_any = any(store.path(f"anchors/{m.batch_id}.json").exists()
                       for m in manifests)
    if client is None and cfg.enabled and anchored_any:
        client = open_client(store, cfg, read_only=True)
    prev = None
    rewritten = _rewritten_ids(store, manifests) if data else set()
    for m in manifests:
        if data:
            skipped = 0
            if _check_files(store, m, problems):
                skipped = _check_rows(store, m, rewritten, problems)
            files = sum(len(v) for v in m.files.values())
            note = (f"; {skipped} rows with PII-rewritten text: content hash not recomputable"
                    if skipped else "")
            lines.append(f"batch {m.seq} {m.batch_id}: data checked ({files} files, "
                         f"{sum(f.rows for f in m.files.get('accepted', ()))} accepted rows){note}")
        if m.prev_root != prev:
            problems.append(f"batch {m.seq}: prev_root {m.prev_root} != previous root {prev}")
        if not m.merkle_root:
            lines.append(f"batch {m.seq} {m.batch_id}: no accepted records, no root")
            continue
        _check_tree(store, m, problems)
        note = check_attribution_shard(store, m, problems)
        if note:
            lines.append(note)
        status = "not anchored"
        state_path = store.path(f"anchors/{m.batch_id}.json")
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        if client is not None:
            onchain = client.batch_of("0x" + datanet_key(m.datanet).hex(), m.batch_id)
            if onchain.anchored:
                status = f"anchored (on-chain seq {onchain.seq}, block {onchain.block_number})"
                if onchain.root != m.merkle_root.lower():
                    problems.append(f"batch {m.seq}: on-chain root {onchain.root} != "
                                    f"manifest {m.merkle_root}")
                if onchain.prev_root != (prev or ZERO32):
                    problems.append(f"batch {m.seq}: on-chain prevRoot {onchain.prev_root} "
                                    f"!= {prev or ZERO32}")
            elif state.get("status") in ("INCLUDED", "FINAL"):
                problems.append(f"batch {m.seq}: outbox says {state['status']} but the "
                                "contract has no root for it")
        lines.append(f"batch {m.seq} {m.batch_id}: root {m.merkle_root} "
                     f"({m.leaf_count} leaves) {status}")
        prev = m.merkle_root.lower()
    _check_rewards(store, problems, lines)
    return problems, lines


def _check_rewards(store: DatanetStore, problems: list[str], lines: list[str]) -> None:
    """Each settled reward epoch: its dump's root is the settlement's, and its proof index
    (when it has one) is byte for byte what that tree gives."""
    from datanet.errors import RewardsError
    from datanet.rewards.epoch import load_reward_tree, load_settlement, settlements
    from datanet.rewards.proofindex import check_index, index_rel

    for epoch in settlements(store):
        rec = load_settlement(store, epoch)
        try:
            tree = load_reward_tree(store, epoch)
        except (RewardsError, AnchoringError, ValueError, KeyError, OSError) as exc:
            problems.append(f"reward epoch {epoch}: {exc}")
            continue
        found = check_index(store, rec, tree) if rec is not None else []
        problems.extend(f"reward epoch {epoch}: {p}" for p in found)
        has_index = store.path(index_rel(epoch)).exists()
        lines.append(f"reward epoch {epoch}: root {tree.root} ({len(tree)} accounts)"
                     + ("" if found else ", proof index checked" if has_index
                        else ", no proof index (`datanet rewards compute` adds it)"))
