"""A self-contained HTML report of one batch or of the whole datanet.

Why a batch looks the way it does, without writing SQL: the funnel from input to accepted,
each validator's verdicts and reject reasons, score distributions, duplicate clusters with the
ids they matched, contributor counts and shares, dead-letter reasons with ``file:line``
samples. Every figure is aggregated in DuckDB over the committed views (the HTML holds counts
and histogram bins, never one point per record) and drawn with plotly; plotly.js is inlined
once, so the file opens offline. Record text, dead-letter messages and raw bytes are never
read: nothing in the report can carry a contributor's PII.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datanet.errors import StoreError

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["ReportData", "collect", "render_html", "write_report", "default_report_path"]

#: Histogram bins per validator score distribution.
SCORE_BINS = 30
#: Rows of the contributor and duplicate-cluster tables (the rest is summed / counted).
TOP_ROWS = 25
#: Sample ``file:line`` locations shown per dead-letter reason.
SAMPLES = 5


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, already aggregated (small: no per-record rows)."""

    datanet: str
    name: str
    license: str
    scope: str
    batches: list[dict[str, Any]]
    counts: dict[str, int]
    verdicts: list[tuple[str, str, int]]
    reject_reasons: list[tuple[str, str, int]]
    scores: dict[str, tuple[float, float, list[int]]]
    duplicate_clusters: list[tuple[str, str, int, list[str]]]
    contributors: list[tuple[str, int, int, int]]
    contributor_total: int
    deadletter: list[tuple[str, int, list[str]]]
    receipts: int = 0
    credits: list[tuple[str, float, int]] = field(default_factory=list)
    credit_total: float = 0.0
    epochs: list[tuple[int, int, str, int]] = field(default_factory=list)
    rewards: list[tuple[str, int, int]] = field(default_factory=list)
    rewards_total: int = 0
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))


def collect(path: str | Path, *, batch: int | None = None) -> ReportData:
    """Aggregate the report's figures from the datanet at ``path`` (one batch when ``batch``
    is a sequence number, else every committed batch)."""
    from datanet.store.layout import DatanetStore
    from datanet.store.query import connect

    store = DatanetStore(path)
    con = connect(store)
    rows = con.sql("SELECT * FROM batches ORDER BY seq")
    cols = rows.columns
    batches = [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]
    if batch is not None:
        batches = [b for b in batches if b["seq"] == batch]
        if not batches:
            raise StoreError(f"--batch {batch}: no such committed batch "
                             f"(committed: 1..{len(store.manifests())})")
        where, params = "WHERE batch = $b", {"b": batches[0]["batch_id"]}
        scope = f"batch {batch}"
    else:
        where, params = "", {}
        scope = f"whole datanet ({len(batches)} batch{'es' if len(batches) != 1 else ''})"
    counts = {k: sum(int(b[k] or 0) for b in batches)
              for k in ("input", "accepted", "rejected", "quarantine", "deadletter")}

    def q(sql: str) -> list[tuple]:
        return con.execute(sql.replace("{where}", where), params).fetchall()

    def and_(cond: str) -> str:
        return f"{where} AND {cond}" if where else f"WHERE {cond}"

    verdicts = q("SELECT validator, verdict, count(*) FROM votes {where} GROUP BY ALL "
                 "ORDER BY 1, 2")
    rejects = and_("verdict = 'reject'")
    matched = and_("verdict = 'reject' AND details LIKE '%\"matched\"%'")
    scored = and_("score IS NOT NULL")
    reasons = con.execute(
        "SELECT validator, coalesce(reason, '(none)'), count(*) FROM votes "
        f"{rejects} GROUP BY ALL ORDER BY 3 DESC, 1, 2", params).fetchall()
    scores: dict[str, tuple[float, float, list[int]]] = {}
    for validator, lo, hi, bins in con.execute(
        f"""WITH s AS (SELECT validator, score FROM votes {scored}),
                 r AS (SELECT validator, min(score) AS lo, max(score) AS hi FROM s GROUP BY 1),
                 b AS (SELECT validator, lo, hi,
                              CASE WHEN hi > lo THEN least(CAST(floor((score - lo) / (hi - lo)
                                   * {SCORE_BINS}) AS INTEGER), {SCORE_BINS - 1}) ELSE 0 END
                                   AS bin
                       FROM s JOIN r USING (validator))
            SELECT validator, any_value(lo), any_value(hi),
                   list({{'bin': bin, 'n': n}} ORDER BY bin)
            FROM (SELECT validator, lo, hi, bin, count(*) AS n FROM b GROUP BY ALL)
            GROUP BY validator ORDER BY validator""", params).fetchall():
        hist = [0] * SCORE_BINS
        for cell in bins:
            hist[cell["bin"]] = cell["n"]
        scores[validator] = (float(lo), float(hi), hist)
    clusters = [
        (m, v, n, list(ids)) for m, v, n, ids in con.execute(
            f"""SELECT json_extract_string(details, '$.matched') AS matched, validator,
                       count(*) AS n, list(contribution_id ORDER BY contribution_id)[1:5]
                FROM votes {matched}
                GROUP BY ALL ORDER BY n DESC, matched LIMIT {TOP_ROWS}""", params).fetchall()]
    contributors = q(
        f"""SELECT contributor, sum(a)::BIGINT, sum(r)::BIGINT, sum(qu)::BIGINT FROM (
              SELECT contributor, 1 AS a, 0 AS r, 0 AS qu FROM accepted {{where}}
              UNION ALL SELECT contributor, 0, 1, 0 FROM rejected {{where}}
              UNION ALL SELECT contributor, 0, 0, 1 FROM quarantine {{where}})
            GROUP BY contributor ORDER BY 2 DESC, 3 DESC, 1 LIMIT {TOP_ROWS}""")
    contributor_total = q("SELECT count(DISTINCT contributor) FROM (SELECT contributor FROM "
                          "accepted {where} UNION ALL SELECT contributor FROM rejected {where} "
                          "UNION ALL SELECT contributor FROM quarantine {where})")[0][0]
    dead = [(r, n, list(s)) for r, n, s in q(
        f"""SELECT reason, count(*), list(source_file || ':' || source_line
                                           ORDER BY source_file, source_line)[1:{SAMPLES}]
            FROM deadletter {{where}} GROUP BY reason ORDER BY 2 DESC, 1""")]
    # recorded attributions (receipts): credited weight per contributor, summed over outputs;
    # a batch report counts the credit that went to that batch's records
    credit_where = "WHERE u.batch_id = $b" if batch is not None else ""
    receipts = con.execute("SELECT count(*) FROM attributions").fetchall()[0][0]
    credits = [(c, float(w), int(n)) for c, w, n in con.execute(
        f"""SELECT u.contributor, sum(u.weight), count(DISTINCT u.contribution_id)
            FROM (SELECT unnest(attributions) AS u FROM attributions) {credit_where}
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_ROWS}""", params).fetchall()]
    credit_total = con.execute(
        f"SELECT coalesce(sum(u.weight), 0) FROM (SELECT unnest(attributions) AS u "
        f"FROM attributions) {credit_where}", params).fetchall()[0][0]
    epochs, rewards, rewards_total = _rewards(store)
    spec = store.spec
    return ReportData(
        datanet=spec.id, name=spec.name, license=spec.license, scope=scope, batches=batches,
        counts=counts, verdicts=[tuple(v) for v in verdicts],
        reject_reasons=[tuple(r) for r in reasons], scores=scores,
        duplicate_clusters=clusters, contributors=[tuple(c) for c in contributors],
        contributor_total=int(contributor_total), deadletter=dead,
        receipts=receipts, credits=credits, credit_total=float(credit_total),
        epochs=epochs, rewards=rewards, rewards_total=rewards_total)


def _rewards(store: DatanetStore
             ) -> tuple[list[tuple[int, int, str, int]], list[tuple[str, int, int]], int]:
    """Committed reward epochs ``(epoch, pool, root, accounts)``, the top accounts of the
    latest one ``(account, amount in that epoch, cumulative)`` and the cumulative total.
    Datanet-wide (an epoch spans batches); the rewards package is imported only when an
    epoch exists."""
    if not any(Path(store.abs("rewards")).glob("*.settlement.json")):
        return [], [], 0
    from datanet.rewards.epoch import load_settlement, settlements

    done = [load_settlement(store, e) for e in settlements(store)]
    done = [x for x in done if x is not None]
    if not done:
        return [], [], 0
    epochs = [(x.epoch, x.pool, x.root, len(x.allocations)) for x in done]
    last = done[-1]
    rows = sorted(((a, m, c) for a, _w, _u, m, c in last.allocations), key=lambda r: (-r[2], r[0]))
    return epochs, rows[:TOP_ROWS], sum(r[2] for r in rows)


# -- rendering --------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#1b1f24}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de}
.meta{color:#57606a}table{border-collapse:collapse;margin:.6rem 0;font-size:13px}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px;word-break:break-all}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;
padding:.5rem .9rem}.card b{display:block;font-size:1.4rem}.empty{color:#57606a;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{v}</td>"
                         for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _short(value: str | None) -> str:
    """A 0x-id cut to 18 characters, the full id in its tooltip."""
    if not value:
        return "-"
    return f'<code title="{_e(value)}">{_e(value[:18])}…</code>'


def _codes(values: list[str]) -> str:
    return "<br>".join(f"<code>{_e(v)}</code>" for v in values)


def _figures(d: ReportData) -> list[tuple[str, Any]]:
    """(section id, plotly figure) pairs; sections without data get no figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    layout = {"template": "plotly_white", "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
              "height": 360}
    figs: list[tuple[str, Any]] = []
    c = d.counts
    funnel = go.Figure(go.Funnel(
        y=["input", "parsed (not dead-letter)", "not rejected", "accepted"],
        x=[c["input"], c["input"] - c["deadletter"], c["accepted"] + c["quarantine"],
           c["accepted"]], textinfo="value+percent initial"))
    funnel.update_layout(title="From input to accepted", **layout)
    figs.append(("funnel", funnel))
    if d.verdicts:
        fig = go.Figure()
        for verdict, color in (("accept", "#2da44e"), ("abstain", "#afb8c1"),
                               ("reject", "#cf222e")):
            rows = [(v, n) for v, vd, n in d.verdicts if vd == verdict]
            fig.add_bar(name=verdict, y=[v for v, _ in rows], x=[n for _, n in rows],
                        orientation="h", marker_color=color)
        fig.update_layout(barmode="stack", title="Votes per validator", **layout)
        figs.append(("verdicts", fig))
    if d.reject_reasons:
        top = d.reject_reasons[:30][::-1]
        fig = go.Figure(go.Bar(y=[f"{v}: {r}" for v, r, _ in top], x=[n for *_, n in top],
                               orientation="h", marker_color="#cf222e"))
        fig.update_layout(title="Reject votes by validator and reason",
                          **{**layout, "height": max(300, 22 * len(top) + 80)})
        figs.append(("reasons", fig))
    if d.scores:
        names = sorted(d.scores)
        ncols = 2 if len(names) > 1 else 1
        nrows = (len(names) + ncols - 1) // ncols
        fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=names)
        for i, name in enumerate(names):
            lo, hi, hist = d.scores[name]
            width = (hi - lo) / SCORE_BINS if hi > lo else 1.0
            fig.add_bar(x=[lo + (k + 0.5) * width for k in range(SCORE_BINS)], y=hist,
                        width=width, name=name, showlegend=False, marker_color="#0969da",
                        row=i // ncols + 1, col=i % ncols + 1)
        fig.update_layout(title="Score distributions (records per bin)",
                          **{**layout, "height": 260 * nrows + 60})
        figs.append(("scores", fig))
    if d.contributors:
        top = d.contributors[::-1]
        fig = go.Figure()
        for idx, (name, color) in enumerate((("accepted", "#2da44e"), ("rejected", "#cf222e"),
                                             ("needs review", "#bf8700")), start=1):
            fig.add_bar(name=name, y=[r[0][:10] + "…" for r in top], x=[r[idx] for r in top],
                        orientation="h", marker_color=color)
        fig.update_layout(barmode="stack", title=f"Top {len(top)} contributors",
                          **{**layout, "height": max(300, 20 * len(top) + 80)})
        figs.append(("contributors", fig))
    if d.credits:
        top = d.credits[::-1]
        fig = go.Figure(go.Bar(y=[c[:10] + "…" for c, *_ in top], x=[w for _, w, _ in top],
                               orientation="h", marker_color="#0969da"))
        fig.update_layout(title="Attribution credit by contributor (sum of weights)",
                          **{**layout, "height": max(300, 20 * len(top) + 80)})
        figs.append(("attribution", fig))
    if d.rewards:
        top = d.rewards[::-1]
        fig = go.Figure(go.Bar(y=[a[:10] + "…" for a, *_ in top], x=[c for *_, c in top],
                               orientation="h", marker_color="#bf8700"))
        fig.update_layout(title="Cumulative rewards by account (smallest token unit)",
                          **{**layout, "height": max(300, 20 * len(top) + 80)})
        figs.append(("rewards", fig))
    if d.deadletter:
        fig = go.Figure(go.Bar(x=[r for r, *_ in d.deadletter], y=[n for _, n, _ in d.deadletter],
                               marker_color="#8250df"))
        fig.update_layout(title="Dead-letter reasons", **layout)
        figs.append(("deadletter", fig))
    return figs


def render_html(d: ReportData) -> str:
    """The report as one HTML document (plotly.js inlined once; no external resource)."""
    import plotly.io as pio

    plots: dict[str, str] = {}
    for i, (section, fig) in enumerate(_figures(d)):
        plots[section] = pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),
                                     config={"displaylogo": False, "responsive": True},
                                     div_id=f"plot-{section}")
    c = d.counts
    accepted = max(c["accepted"], 1)
    cards = "".join(f'<div class="card"><b>{v:,}</b>{_e(k)}</div>' for k, v in (
        ("input", c["input"]), ("accepted", c["accepted"]), ("rejected", c["rejected"]),
        ("needs review", c["quarantine"]), ("dead-letter", c["deadletter"]),
        ("contributors", d.contributor_total)))
    cards = f'<div class="cards">{cards}</div>'
    batch_rows = [[b["seq"], _short(b["batch_id"]), _e(b["created_at"]),
                   b["input"], b["accepted"], b["rejected"], b["quarantine"], b["deadletter"],
                   _short(b["merkle_root"]), _e(b["anchor_status"] or "-")]
                  for b in d.batches]
    reason_rows = [[_e(v), f"<code>{_e(r)}</code>", n] for v, r, n in d.reject_reasons]
    score_rows = [[_e(v), f"{lo:g}", f"{hi:g}", sum(h)] for v, (lo, hi, h) in
                  sorted(d.scores.items())]
    cluster_rows = [[f"<code>{_e(m)}</code>", _e(v), n, _codes(ids)]
                    for m, v, n, ids in d.duplicate_clusters]
    contributor_rows = [[f"<code>{_e(a)}</code>", n_a, n_r, n_q, f"{n_a / accepted:.1%}"]
                        for a, n_a, n_r, n_q in d.contributors]
    dead_rows = [[f"<code>{_e(r)}</code>", n, _codes(s)] for r, n, s in d.deadletter]
    paid = d.rewards_total or 1
    reward_rows = [[f"<code>{_e(a)}</code>", f"{m:,}", f"{c:,}", f"{c / paid:.1%}"]
                   for a, m, c in d.rewards]
    credited = d.credit_total or 1.0
    credit_rows = [[f"<code>{_e(c)}</code>", f"{w:.4f}", n, f"{w / credited:.1%}"]
                   for c, w, n in d.credits]

    def section(sid: str, title: str, body: str, *, before: str = "") -> str:
        return (f'<section id="{sid}"><h2>{_e(title)}</h2>{before}{plots.get(sid, "")}{body}'
                "</section>")

    parts = [
        section("funnel", "Funnel", "", before=cards),
        section("batches", "Batches", _table(
            ["seq", "batch", "created", "input", "accepted", "rejected", "review",
             "dead-letter", "merkle root", "anchor"], batch_rows, {0, 3, 4, 5, 6, 7})),
        section("verdicts", "Validators", ""),
        section("reasons", "Reject reasons", _table(["validator", "reason", "votes"],
                                                    reason_rows, {2})),
        section("scores", "Scores", _table(["validator", "min", "max", "scored votes"],
                                           score_rows, {1, 2, 3})),
        section("clusters", "Duplicate clusters", "<p>Records rejected as (near-)duplicates, "
                "grouped by the contribution they matched (first 5 ids each).</p>" + _table(
                    ["matched", "validator", "records", "ids"], cluster_rows, {2})),
        section("contributors", "Contributors", f"<p>{d.contributor_total:,} contributors; "
                f"share = accepted records / all accepted.</p>" + _table(
                    ["contributor", "accepted", "rejected", "needs review", "share"],
                    contributor_rows, {1, 2, 3, 4})),
        section("attribution", "Attribution", f"<p>{d.receipts:,} recorded model outputs "
                "(receipts); credit = the summed attribution weights of the contributor's "
                f"records{' in this batch' if d.scope.startswith('batch') else ''} (total "
                f"{d.credit_total:.4f}); share = part of that total.</p>"
                + _table(["contributor", "credit", "records credited", "share"],
                         credit_rows, {1, 2, 3})),
        section("rewards", "Rewards", "<p>Committed epochs (datanet-wide; amounts in the "
                "token's smallest unit).</p>" + _table(
                    ["epoch", "pool", "reward root", "accounts"],
                    [[e, f"{p:,}", _short(r), n] for e, p, r, n in d.epochs], {0, 1, 3})
                + (f"<p>Latest epoch: {d.rewards_total:,} paid in total.</p>" if d.rewards
                   else "") + _table(["account", "amount (latest epoch)", "cumulative",
                                      "share"], reward_rows, {1, 2, 3})),
        section("deadletter", "Dead-letter", "<p>Lines that could not become records "
                "(reason, count, first locations; the lines themselves are not shown).</p>"
                + _table(["reason", "lines", "where"], dead_rows, {1})),
    ]
    title = f"{d.name or d.datanet} · {d.scope}"
    meta = (f"datanet <code>{_e(d.datanet)}</code> · licence {_e(d.license)} · generated "
            f"{_e(d.generated_at)} by datanet")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f'<h1>{_e(title)}</h1><p class="meta">{meta}</p>{"".join(parts)}'
            f'<script type="application/json" id="report-data">'
            f"{_json_for_script(d)}</script></body></html>\n")


def _json_for_script(d: ReportData) -> str:
    """The figures' numbers as JSON inside the page (for scripts; ``</`` escaped)."""
    body = {"datanet": d.datanet, "scope": d.scope, "counts": d.counts,
            "reject_reasons": d.reject_reasons, "contributors": d.contributor_total}
    return json.dumps(body, default=str).replace("</", "<\\/")


def default_report_path(path: str | Path, batch: int | None) -> Path:
    """``<datanet>/reports/batch-<seq>.html`` or ``<datanet>/reports/datanet.html``."""
    name = f"batch-{batch}.html" if batch is not None else "datanet.html"
    return Path(path) / "reports" / name


def write_report(path: str | Path, *, batch: int | None = None,
                 output: str | Path | None = None) -> Path:
    """Collect, render and write the report; returns the file written."""
    from datanet.store.atomic import write_atomic

    target = Path(output) if output else default_report_path(path, batch)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, render_html(collect(path, batch=batch)))
    return target
