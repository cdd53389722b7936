"""The DuckDB views: empty views typed like the files they stand for; connect() stays light."""

from __future__ import annotations

import pyarrow as pa

from datanet.attribution.receipts import RECEIPT_SCHEMA
from datanet.store.query import _empty_select, connect


def test_empty_attributions_view_has_the_receipt_schema(tiny_store):
    con = connect(tiny_store)
    got = con.execute("DESCRIBE attributions").fetchall()
    want = con.execute("DESCRIBE " + _empty_select(
        RECEIPT_SCHEMA.append(pa.field("batch", pa.string())))).fetchall()
    assert [(r[0], r[1]) for r in got] == [(r[0], r[1]) for r in want]
    assert con.execute("SELECT count(*) FROM attributions").fetchall() == [(0,)]
