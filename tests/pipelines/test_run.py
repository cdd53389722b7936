"""End-to-end pipeline runs on the DirectRunner: outcomes, idempotence, runner modes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datanet.pipelines.run import run_datanet
from datanet.store.query import connect
from tests.conftest import ADDRS, TEXTS, record, write_jsonl


def _awkward_inputs(tmp_path):
    """8 clean, 1 exact dup (other contributor), 1 resubmission, 1 too short, 1 bad field,
    and 3 dead-letter lines, over a plain and a gzip file."""
    clean = [record(i) for i in range(8)]
    dup = record(0, contributor=ADDRS[5], submitted_at="2026-10-20T00:00:00Z",
                 text=" " + clean[0]["text"].replace(" ", "\u200b ", 1))
    resub = dict(clean[1])
    short = record(9, text="too short")
    bad_choice = record(10, topic="frying",
                        text="Marinate tofu overnight in soy, ginger and garlic before grilling.")
    a = write_jsonl(tmp_path / "a.jsonl", [*clean[:5], dup, b"{nope", resub, short])
    b_path = tmp_path / "b.jsonl.gz"
    lines = [*clean[5:], bad_choice, {"text": "x" * 50}, {"contributor": ADDRS[0], "text": 7}]
    b_path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in lines)))
    return [str(a), str(tmp_path / "*.gz")]


def _outcomes(store):
    con = connect(store)
    rows = con.execute("SELECT source_line, list_sort(reasons) FROM rejected ORDER BY 1").fetchall()
    dead = con.execute("SELECT reason, source_line FROM deadletter ORDER BY 2, 1").fetchall()
    n_acc = con.execute("SELECT count(*) FROM accepted").fetchone()[0]
    return n_acc, rows, dead


def test_every_record_ends_exactly_once(tiny_store, tmp_path):
    inputs = _awkward_inputs(tmp_path)
    result = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert result.committed
    assert result.counts == {"accepted": 8, "rejected": 3, "quarantine": 0, "deadletter": 4,
                             "input": 15}
    n_acc, rejected, dead = _outcomes(tiny_store)
    assert n_acc == 8
    assert rejected == [(4, ["field_choice:topic"]), (6, ["exact_duplicate"]),
                        (9, ["too_short"])]
    assert sorted(dead) == sorted([("invalid_json", 7), ("duplicate_submission", 8),
                                   ("missing_field", 5), ("bad_type", 6)])
    tally = connect(tiny_store).execute(
        "SELECT tally.decided_by, tally.reject FROM rejected WHERE source_line = 6").fetchone()
    assert tally == ("veto", 1.0)
    m = result.manifest
    assert m.seq == 1 and m.merkle_root and m.leaf_count == 8 and m.prev_root is None
    assert sorted(m.sources) == sorted([inputs[0], str(tmp_path / "b.jsonl.gz")])
    # votes: one per validator per surviving record
    con = connect(tiny_store)
    assert con.execute("SELECT validator, count(*) FROM votes GROUP BY 1 ORDER BY 1"
                       ).fetchall() == [("exact_duplicate", 11), ("limits", 11), ("pii", 11),
                                        ("signature", 11)]
    dup_vote = json.loads(con.execute(
        "SELECT details FROM votes WHERE reason = 'exact_duplicate'").fetchone()[0])
    first = con.execute("SELECT contribution_id FROM accepted WHERE source_line = 1 "
                        "AND source_file LIKE '%a.jsonl'").fetchone()[0]
    assert dup_vote == {"matched": first}
    # text_norm never stored; files named by the manifest carry exactly the counted rows
    for kind, entries in m.files.items():
        for f in entries:
            path = tiny_store.abs(f.path)
            # the attribution shard is Arrow IPC (memory-mapped); every other file Parquet
            t = (pa.ipc.open_file(path).read_all() if path.endswith(".arrow")
                 else pq.read_table(path))
            assert "text_norm" not in t.column_names
            assert t.num_rows == f.rows, kind


def test_rerun_is_a_noop_and_history_dedup_works(tiny_store, tmp_path):
    inputs = _awkward_inputs(tmp_path)
    first = run_datanet(tiny_store, inputs, runner="DirectRunner")
    before = sorted(p.relative_to(tiny_store.root) for p in tiny_store.root.rglob("*.parquet"))
    again = run_datanet(tiny_store, inputs, runner="DirectRunner")
    assert not again.committed and "nothing new" in again.message
    assert again.batch_id == first.batch_id
    after = sorted(p.relative_to(tiny_store.root) for p in tiny_store.root.rglob("*.parquet"))
    assert after == before  # a re-run writes nothing
    assert len(tiny_store.manifests()) == 1

    # a new delivery with one record already accepted in batch 1
    new = write_jsonl(tmp_path / "c.jsonl", [record(0, contributor=ADDRS[7]),
                                             record(20, text=TEXTS[3] + " A brand new tip.")])
    second = run_datanet(tiny_store, [str(new)], runner="DirectRunner")
    assert second.committed and second.manifest.seq == 2
    assert second.manifest.prev_batch == first.batch_id
    assert second.manifest.prev_root == first.manifest.merkle_root
    con = connect(tiny_store)
    detail = json.loads(con.execute(
        "SELECT v.details FROM votes v WHERE v.batch = ? AND v.reason = 'exact_duplicate'",
        [second.batch_id]).fetchone()[0])
    assert detail["batch"] == first.batch_id
    assert con.execute("SELECT count(*) FROM accepted").fetchone()[0] == 9
    old = connect(tiny_store, as_of=1)
    assert old.execute("SELECT count(*) FROM accepted").fetchone()[0] == 8
    assert old.execute("SELECT max(seq) FROM batches").fetchone()[0] == 1


@pytest.mark.slow
def test_multiprocessing_mode_gives_identical_results(tmp_path):
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    inputs = _awkward_inputs(tmp_path)
    results = []
    for mode, args in (("mem", []), ("mp", ["--direct_running_mode=multi_processing",
                                            "--direct_num_workers=2"])):
        store = init_datanet(tmp_path / mode, TINY_SPEC)
        r = run_datanet(store, inputs, runner="DirectRunner", beam_args=args)
        con = connect(store)
        rows = {k: con.execute(f"SELECT * EXCLUDE (batch) FROM {k} ORDER BY ALL").fetchall()
                for k in ("accepted", "rejected", "deadletter", "votes")}
        results.append((r.batch_id, r.manifest.merkle_root, r.counts, rows))
    assert results[0] == results[1]


def test_missing_input_is_a_clear_error(tiny_store, tmp_path):
    from datanet.errors import IntakeError

    with pytest.raises(IntakeError, match="no input file matches"):
        run_datanet(tiny_store, [str(tmp_path / "nope*.jsonl")], runner="DirectRunner")
    assert tiny_store.manifests() == []


def test_duckdb_can_read_committed_files_directly(tiny_store, tmp_path):
    run_datanet(tiny_store, _awkward_inputs(tmp_path), runner="DirectRunner")
    files = tiny_store.files("accepted")
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0]
    assert n == 8


def test_pipeline_runs_with_sockets_disabled(tiny_store, tmp_path, monkeypatch):
    """No network at run time: Beam 2.77's DirectRunner would try Prism (a download) first."""
    import pytest_socket
    from apache_beam.runners.portability import prism_runner

    prism_calls: list[object] = []
    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline",
                        lambda self, *a, **k: prism_calls.append(a))
    inputs = _awkward_inputs(tmp_path)
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        result = run_datanet(tiny_store, inputs, runner="DirectRunner")
    finally:
        pytest_socket.enable_socket()
    assert prism_calls == []
    assert result.committed and result.counts["input"] == 15


def test_spilled_chunk_holds_no_pii(tiny_store, tmp_path):
    """Validated chunks travel to the final join as scratch Parquet (FnApiRunner would hold
    every record's text in memory); the spill holds no PII the policy rejects: no
    ``text_norm``, and ``text`` as scrubbed by the pii validator."""
    from datanet.pipelines.intake import iter_file_chunks
    from datanet.pipelines.io import load_spilled, read_spilled
    from datanet.pipelines.run import ChunkRef, _BatchValidate
    from datanet.validators import registry

    email = "jane.doe@example.org"
    texts = [f"Email me the recipe at {email} before the weekend please.", TEXTS[1]]
    src = write_jsonl(tmp_path / "in.jsonl", [record(i, text=t) for i, t in enumerate(texts)])
    with open(src, "rb") as fh:
        [(key, batch, _)] = [c for c in iter_file_chunks(tiny_store.spec, str(src), fh,
                                                             default_time_us=0)
                             if c[1] is not None]
    keyed = registry.keyed_stages(tiny_store.spec)
    fn = _BatchValidate(tiny_store.spec, str(tmp_path / "scratch"), keyed=keyed)
    fn.setup()
    out = list(fn.process((key, batch)))
    [(out_key, ref)] = [item for tag, item in out if tag == "records"]
    assert out_key == key and isinstance(ref, ChunkRef)
    # the keyed stages' step 1 ran on the same chunk: their key rows and index tables
    assert {tag for tag, _ in out if tag != "records"} == {v.name for v in keyed}
    spilled = list((tmp_path / "scratch").iterdir())
    kinds = sorted(p.name.split("-", 1)[1] for p in spilled)
    assert kinds[-2:] == ["records.arrow", "votes.arrow"] and len(kinds) > 2
    # key rows: one file of IPC streams per chunk and validator, a (path, offset, length)
    # per shard; every other spill: one IPC file
    rows = [item[1][1].rows for tag, item in out if tag != "records" and item[0] == "parts"]
    assert rows and {Path(r[0]).name.split("-", 1)[1] for r in rows} == {
        f"{v.name}-rows.arrow" for v in keyed}
    for path in spilled:
        assert email.encode() not in path.read_bytes()
        tables = ([load_spilled(r) for r in rows if r[0] == str(path)]
                  if path.name.endswith("-rows.arrow") else [read_spilled(str(path))])
        assert tables
        for table in tables:
            assert email not in json.dumps(table.to_pylist(), default=str)
    scrubbed = [texts[0].replace(email, "<EMAIL_ADDRESS>"), texts[1]]
    assert read_spilled(ref.records).column("text").to_pylist() == scrubbed
    assert "text_norm" not in read_spilled(ref.records).column_names
    records, votes = ref.load()
    assert records.column("text").to_pylist() == scrubbed
    ids = batch.column("contribution_id").to_pylist()
    assert records.column("contribution_id").to_pylist() == ids
    assert sorted(set(votes.column("validator").to_pylist())) == ["limits", "pii", "signature"]


def test_run_leaves_no_scratch(tiny_store, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    result = run_datanet(tiny_store, [str(src)], runner="DirectRunner")
    assert result.counts["accepted"] == 4
    assert list((tiny_store.root / "_runs").iterdir()) == []


def test_chunks_are_coalesced_into_one_file_per_kind(tmp_path):
    """40 records in chunks of 3 (14 chunks): one file per kind, not one per chunk; a 1 MB
    target file size changes nothing here, the outcome equals one big chunk's, and the same
    run into a fresh datanet writes byte-identical files (same content addresses)."""
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    recs = [record(i, text=TEXTS[i % 8] + f" Variation number {i} of this tip.")
            for i in range(40)]
    recs[5] = b"{broken"
    recs[30] = record(30, text="short")
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    out, paths = {}, {}
    for name, pipeline in (("small", "batch_rows = 3\ntarget_file_mb = 1"),
                           ("small-again", "batch_rows = 3\ntarget_file_mb = 1"),
                           ("big", "batch_rows = 2000")):
        spec = TINY_SPEC.replace("[fields.topic]", f"[pipeline]\n{pipeline}\n\n[fields.topic]")
        store = init_datanet(tmp_path / name, spec)
        result = run_datanet(store, [str(path)], runner="DirectRunner")
        files = result.manifest.files
        assert {k: len(v) for k, v in files.items() if k != "attribution"} == {
            "accepted": 1, "rejected": 1, "deadletter": 1, "votes": 1}, name
        assert (result.counts["accepted"], result.counts["rejected"],
                result.counts["deadletter"]) == (38, 1, 1)
        paths[name] = sorted(f.path for v in files.values() for f in v)
        con = connect(store)
        out[name] = (result.batch_id, result.manifest.merkle_root, {
            k: con.execute(f"SELECT * EXCLUDE (batch) FROM {k} ORDER BY ALL").fetchall()
            for k in ("accepted", "rejected", "deadletter", "votes")})
    assert out["small"] == out["small-again"] == out["big"]
    assert paths["small"] == paths["small-again"]  # same bytes, same content addresses


def test_every_validator_off_still_commits_with_no_votes(tmp_path):
    """A spec that turns every validator off (intake benchmarks do): every parsed record is
    accepted, dead-letters stay, and the votes table is empty rather than a failed join."""
    from datanet.store.layout import init_datanet
    from datanet.validators.registry import BATCH_VALIDATORS, KEYED_VALIDATORS

    spec = 'id = "off"\n' + "".join(f"[validators.{n}]\nenabled = false\n"
                                    for n in (*BATCH_VALIDATORS, *KEYED_VALIDATORS))
    store = init_datanet(tmp_path / "dn", spec)
    path = write_jsonl(tmp_path / "in.jsonl", [record(0), record(1), record(2), b"{nope"])
    result = run_datanet(store, [str(path)], runner="DirectRunner")
    assert result.counts == {"accepted": 3, "rejected": 0, "quarantine": 0, "deadletter": 1,
                             "input": 4}
    con = connect(store)
    assert con.execute("SELECT count(*) FROM votes").fetchone()[0] == 0


def test_batch_id_combine_is_the_id_of_the_sorted_distinct_records() -> None:
    """The pipeline's batch id (byte matrices merged across bundles) equals
    :func:`datanet.schemas.ids.batch_id` of the same ids, duplicates and order aside."""
    from datanet.pipelines.run import _BatchIdFn, _id_rows
    from datanet.schemas.ids import batch_id, keccak_hex

    ids = [keccak_hex(str(i).encode()) for i in range(40)]
    fn = _BatchIdFn("d")
    parts = []
    for key, chunk in (("b", ids[25:] + ids[:3]), ("a", ids[:25]), ("c", [])):
        acc = fn.create_accumulator()
        # what the pipeline sends: the chunk's ids as 32-byte rows
        item = _id_rows((key, pa.table({"record_id": pa.array(chunk, pa.string())})),
                        "record_id")
        assert item[1].shape == (len(chunk), 32)
        assert [r.tobytes().hex() for r in item[1]] == [i[2:] for i in chunk]
        parts.append(fn.add_input(acc, item))
    got, keys = fn.extract_output(fn.merge_accumulators([parts[2], parts[0], parts[1]]))
    assert got == batch_id("d", ids) == batch_id("d", reversed(ids)) and keys == ["a", "b", "c"]
    assert got != batch_id("d", ids[1:]) and got != batch_id("e", ids)
    assert fn.extract_output(fn.create_accumulator())[0] == batch_id("d", [])


def test_a_contribution_id_is_committed_once_with_exact_duplicate_off(tmp_path):
    """With ``exact_duplicate`` off a repeated contribution (same contributor and text, so the
    same id: one Merkle leaf, one share of rewards) is still not accepted twice: a copy within
    the input and one of an accepted record leave for dead-letter as ``duplicate_submission``,
    naming file and line; the stage casts no votes; other contributors' copies are accepted."""
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    spec = TINY_SPEC + "\n[validators.exact_duplicate]\nenabled = false\n"
    store = init_datanet(tmp_path / "dn", spec)
    a = write_jsonl(tmp_path / "a.jsonl", [record(1), record(2)])
    copy = record(1, contributor=record(0)["contributor"])  # record 1's text, another author
    b = write_jsonl(tmp_path / "b.jsonl", [record(1), record(3), record(3), copy])
    first = run_datanet(store, [str(a)], runner="DirectRunner")
    assert first.counts == {"accepted": 2, "rejected": 0, "quarantine": 0, "deadletter": 0,
                            "input": 2}
    second = run_datanet(store, [str(b)], runner="DirectRunner")
    assert second.counts == {"accepted": 2, "rejected": 0, "quarantine": 0, "deadletter": 2,
                             "input": 4}
    con = connect(store)
    ids = con.execute("SELECT contribution_id, source_file, source_line FROM accepted "
                      "ORDER BY source_file, source_line").fetchall()
    assert len({i for i, _, _ in ids}) == 4
    assert [(f.rsplit("/", 1)[1], ln) for _, f, ln in ids] == [
        ("a.jsonl", 1), ("a.jsonl", 2), ("b.jsonl", 2), ("b.jsonl", 4)]
    by_line = {ln: i for i, f, ln in ids if f.endswith("a.jsonl")}
    dead = con.execute("SELECT source_line, reason, message FROM deadletter "
                       "ORDER BY source_line").fetchall()
    b_path = str(b)
    assert dead == [
        (1, "duplicate_submission", f"{b_path}:1: contribution {by_line[1]} is already accepted "
                                    f"(batch {first.batch_id})"),
        (3, "duplicate_submission", f"{b_path}:3: the same contributor submitted the same "
                                    f"text again (contribution "
                                    f"{next(i for i, f, ln in ids if ln == 2 and 'b.' in f)})"),
    ]
    assert con.execute("SELECT count(*) FROM votes WHERE validator IN "
                       "('duplicate_submission', 'exact_duplicate')").fetchone() == (0,)


def test_bundles_sample_state_every_20_ms_during_a_run_only(tiny_store, tmp_path, monkeypatch):
    """Every bundle of a run samples Beam's state every STATE_SAMPLING_MS (so its end waits
    that long at most, not Beam's 200 ms); Beam's own default is back after the run."""
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    from datanet.pipelines.run import STATE_SAMPLING_MS, short_state_sampling

    default = statesampler.StateSampler("x", CounterFactory()).sampling_period_ms
    assert default == 200 and STATE_SAMPLING_MS == 20
    periods: list[int] = []
    start = statesampler.StateSampler.start

    def spy(self):
        periods.append(self.sampling_period_ms)
        return start(self)

    monkeypatch.setattr(statesampler.StateSampler, "start", spy)
    src = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    assert run_datanet(tiny_store, [str(src)], runner="DirectRunner").counts["accepted"] == 4
    assert len(periods) >= 10 and set(periods) == {STATE_SAMPLING_MS}
    assert statesampler.StateSampler("x", CounterFactory()).sampling_period_ms == default
    with short_state_sampling(500):  # never lengthens the period
        assert statesampler.StateSampler("x", CounterFactory()).sampling_period_ms == default
    assert statesampler.StateSampler("x", CounterFactory()).sampling_period_ms == default
