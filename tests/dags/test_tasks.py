"""Scheduler-neutral steps (no Airflow needed): discovery, the ingested record, no-ops."""

from __future__ import annotations

import json

import pytest

from datanet.errors import StoreError
from datanet.orchestration import tasks as steps
from tests.conftest import TINY_SPEC, record, write_jsonl


@pytest.fixture
def inbox(tiny_store):
    box = tiny_store.root / "inbox"
    (box / "sub").mkdir(parents=True)
    write_jsonl(box / "a.jsonl", [record(0), record(1)])
    write_jsonl(box / "sub" / "b.jsonl.gz", [])
    (box / "sub" / "c.csv").write_text("contributor,text\n")
    (box / ".d.jsonl").write_text("")            # hidden: an editor's or rsync's temp file
    (box / "_e.jsonl").write_text("")            # being written (Hadoop convention)
    (box / "_staging").mkdir()
    (box / "_staging" / "f.jsonl").write_text("")
    (box / "notes.txt").write_text("not an input")  # unknown format: logged, left alone
    return box


def test_discover_lists_new_inputs_only(tiny_store, inbox, caplog):
    assert steps.discover(tiny_store.root) == [
        str(inbox / "a.jsonl"), str(inbox / "sub" / "b.jsonl.gz"), str(inbox / "sub" / "c.csv")]
    assert "notes.txt: unknown input format" in caplog.text

    outcome = steps.ingest(tiny_store.root, [str(inbox / "a.jsonl")])
    assert (outcome.committed, outcome.seq, outcome.counts["input"]) == (True, 1, 2)
    assert steps.confirm_commit(tiny_store.root, outcome) == {
        "batch_id": outcome.batch_id, "seq": 1, "recorded": []}
    assert steps.discover(tiny_store.root) == [
        str(inbox / "sub" / "b.jsonl.gz"), str(inbox / "sub" / "c.csv")]

    # the same input again (a retry after the commit): nothing new, nothing recorded
    again = steps.ingest(tiny_store.root, [str(inbox / "a.jsonl")])
    assert (again.committed, again.batch_id, again.seq) == (False, outcome.batch_id, 1)
    assert steps.confirm_commit(tiny_store.root, again)["recorded"] == []
    assert not (tiny_store.root / steps.INGESTED_DIR).exists()


def test_copy_of_committed_input_is_recorded_not_rerun(tiny_store, inbox):
    first = steps.ingest(tiny_store.root, [str(inbox / "a.jsonl")])
    copy = inbox / "a-again.jsonl"
    copy.write_bytes((inbox / "a.jsonl").read_bytes())
    outcome = steps.ingest(tiny_store.root, [str(copy)])
    assert (outcome.committed, outcome.batch_id) == (False, first.batch_id)
    assert steps.confirm_commit(tiny_store.root, outcome)["recorded"] == [str(copy)]
    (rec,) = (tiny_store.root / steps.INGESTED_DIR).glob("*.json")
    body = json.loads(rec.read_text())
    assert (body["sources"], body["reason"], body["batch_id"]) == (
        [str(copy)], "already_committed", first.batch_id)
    assert str(copy) not in steps.discover(tiny_store.root)
    assert len(tiny_store.manifests()) == 1


def test_no_input_is_a_no_op(tiny_store):
    outcome = steps.ingest(tiny_store.root, [])
    assert outcome.to_json() == {"inputs": [], "batch_id": None, "seq": None,
                                 "committed": False, "counts": {}, "message": "no new input"}
    assert steps.IngestOutcome.from_json(outcome.to_json()) == outcome
    assert steps.confirm_commit(tiny_store.root, outcome) == {"batch_id": None, "recorded": []}
    assert steps.discover(tiny_store.root) == []  # no inbox folder at all


def test_uncommitted_batch_and_bad_record_are_errors(tiny_store, tmp_path):
    src = write_jsonl(tmp_path / "x.jsonl", [record(3)])
    ghost = steps.IngestOutcome((str(src),), "0x" + "ab" * 32, 1, True, {"input": 1}, "")
    with pytest.raises(StoreError, match="is not committed; re-run the ingest task"):
        steps.confirm_commit(tiny_store.root, ghost)
    bad = tiny_store.root / steps.INGESTED_DIR / "bad.json"
    bad.parent.mkdir()
    bad.write_text('{"reason": "no_records"}')
    with pytest.raises(StoreError, match=r"bad\.json: unreadable ingested record"):
        steps.ingested_sources(tiny_store)


def test_anchoring_disabled_is_final(tmp_path):
    pytest.importorskip("datanet.anchoring.outbox", reason="anchoring outbox not merged yet")
    from datanet.store.layout import init_datanet

    store = init_datanet(tmp_path / "off", TINY_SPEC + "\n[anchoring]\nenabled = false\n")
    assert steps.finality(store.root).to_json() == {
        "available": True, "enabled": False, "rooted": 0, "statuses": {}, "final": True}
