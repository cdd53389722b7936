"""`datanet report`: exact aggregates, no PII in the page, and a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.report import collect, render_html
from tests.conftest import ADDRS, TEXTS, TINY_SPEC, record, write_jsonl

runner = CliRunner()
EMAIL = "jane.doe@example.com"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def dn(tmp_path_factory):
    """6 accepted, a cross-contributor duplicate of record 1, a PII record, a bad line."""
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "spec.toml").write_text(TINY_SPEC)
    path = tmp / "dn"
    assert runner.invoke(app, ["init", str(path), "--spec", str(tmp / "spec.toml")]).exit_code == 0
    recs = [record(i) for i in range(6)]
    recs.append(record(1, contributor=ADDRS[7]))
    recs.append(record(2, text=f"Write to me at {EMAIL} for the full recipe card."))
    recs.append(b"{not json")
    inp = write_jsonl(tmp / "in.jsonl", recs)
    r = runner.invoke(app, ["run", str(path), str(inp), "--no-anchor", "--report"])
    assert r.exit_code == 0, r.output
    assert f"report: {path / 'reports' / 'batch-1.html'}" in " ".join(r.stdout.split())
    return path, inp


def _ids(path, query):
    r = runner.invoke(app, ["sql", str(path), query, "-f", "json"])
    return [next(iter(row.values())) for row in json.loads(r.stdout)]


def test_collect_exact_figures(dn):
    path, inp = dn
    d = collect(path, batch=1)
    assert d.scope == "batch 1" and d.license == "CC-BY-4.0" and d.datanet == "tiny"
    assert d.counts == {"input": 9, "accepted": 6, "rejected": 2, "quarantine": 0,
                        "deadletter": 1}
    assert d.reject_reasons == [("exact_duplicate", "exact_duplicate", 1),
                                ("pii", "pii:EMAIL_ADDRESS", 1)]
    dup, = _ids(path, "SELECT contribution_id FROM rejected "
                      "WHERE list_contains(reasons, 'exact_duplicate')")
    original, = _ids(path, f"SELECT contribution_id FROM accepted "
                           f"WHERE contributor = '{ADDRS[1]}'")
    assert d.duplicate_clusters == [(original, "exact_duplicate", 1, [dup])]
    # ADDRS[1] and ADDRS[2] each have one accepted record and one rejected
    by_addr = {a: (n_a, n_r, n_q) for a, n_a, n_r, n_q in d.contributors}
    assert by_addr[ADDRS[2]] == (1, 1, 0)
    assert by_addr[ADDRS[7]] == (0, 1, 0) and by_addr[ADDRS[0]] == (1, 0, 0)
    assert d.contributor_total == 7 and sum(v[0] for v in by_addr.values()) == 6
    assert d.deadletter == [("invalid_json", 1, [f"{inp}:9"])]
    assert set(d.scores) == {"pii"}
    lo, hi, hist = d.scores["pii"]
    assert 0 <= lo <= hi <= 1 and len(hist) == 30
    assert sum(hist) == len(_ids(path, "SELECT score FROM votes WHERE validator = 'pii' "
                                       "AND score IS NOT NULL"))
    whole = collect(path)
    assert whole.scope == "whole datanet (1 batch)" and whole.counts == d.counts


def test_html_is_self_contained_and_holds_no_record_text(dn):
    path, _ = dn
    page = render_html(collect(path, batch=1))
    assert page.count("window.PlotlyConfig") == 1  # plotly.js inlined once
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert EMAIL not in page and "jane.doe" not in page
    assert not any(t[:40] in page for t in TEXTS)
    for section in ("funnel", "verdicts", "reasons", "scores", "clusters", "contributors",
                    "deadletter"):
        assert f'<section id="{section}">' in page
    assert page.count('id="plot-') == 6


def test_report_command(dn, tmp_path):
    path, _ = dn
    r = runner.invoke(app, ["report", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(path / "reports" / "datanet.html")
    assert (path / "reports" / "datanet.html").stat().st_size > 1_000_000
    out = tmp_path / "b.html"
    assert runner.invoke(app, ["report", str(path), "--batch", "1", "-o", str(out)]
                         ).exit_code == 0
    assert "<title>Tiny · batch 1</title>" in out.read_text()
    r = runner.invoke(app, ["report", str(path), "--batch", "4"])
    assert r.exit_code == 1 and "--batch 4: no such committed batch" in r.output


_CAPTURE = """<script>window.__errs=[];addEventListener('error',e=>__errs.push(String(e.message)));
(function(){const ce=console.error;console.error=function(){
__errs.push([].join.call(arguments,' '));ce.apply(console,arguments)}})();
addEventListener('load',()=>setTimeout(()=>{const p=
document.createElement('pre');p.id='__errs';p.textContent=JSON.stringify(__errs);
document.body.appendChild(p)},300));</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs the Debian "
                    "package: apt-get install chromium)")
def test_report_renders_offline_in_headless_chromium(dn, tmp_path):
    path, _ = dn
    page = render_html(collect(path, batch=1))
    # record page errors and console.error calls into the DOM, before any other script runs
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + _CAPTURE, 1), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             "--proxy-server=127.0.0.1:9",  # any network request would fail
             "--hide-scrollbars", "--window-size=1200,2400", "--virtual-time-budget=8000"]
    dom = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'p1'}", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    errs = re.search(r'<pre id="__errs">(.*?)</pre>', dom, re.S)
    assert errs is not None, dom[-2000:]
    assert json.loads(errs.group(1).replace("&quot;", '"')) == []
    # every figure drew its SVG
    assert len(re.findall(r'id="plot-[a-z]+"', dom)) == 6
    assert dom.count('class="main-svg"') >= 6
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--user-data-dir={tmp_path / 'p2'}", f"--screenshot={shot}",
                    (path / "reports" / "batch-1.html").as_uri()], capture_output=True,
                   timeout=120, check=True)
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and plots, not a blank page
    # the accepted-votes green of the bar charts is on screen
    assert any(abs(r - 0x2D) < 8 and abs(g - 0xA4) < 8 and abs(b - 0x4E) < 8
               for _, (r, g, b) in colours)


def test_report_shows_recorded_attribution_credit(tmp_path):
    (tmp_path / "spec.toml").write_text(TINY_SPEC)
    path = tmp_path / "dn"
    assert runner.invoke(app, ["init", str(path), "--spec", str(tmp_path / "spec.toml")]
                         ).exit_code == 0
    inp = write_jsonl(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    assert runner.invoke(app, ["run", str(path), str(inp), "--no-anchor"]).exit_code == 0
    # a model output that quotes record 0 verbatim, recorded as a receipt
    outputs = tmp_path / "out.jsonl"
    outputs.write_text(json.dumps({"id": "o1", "text": record(0)["text"]}) + "\n")
    r = runner.invoke(app, ["attribute", str(path), str(outputs), "--record", "--no-anchor",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    weight = {a["contributor"]: a["weight"] for a in json.loads(r.stdout.splitlines()[0])[
        "attributions"]}
    d = collect(path, batch=1)
    assert d.receipts == 1
    assert [(c, round(w, 9), n) for c, w, n in d.credits] == [
        (c, round(w, 9), 1) for c, w in sorted(weight.items(), key=lambda kv: -kv[1])]
    assert d.credits[0][0] == ADDRS[0]
    assert abs(d.credit_total - sum(weight.values())) < 1e-9
    page = render_html(d)
    assert '<section id="attribution">' in page and 'id="plot-attribution"' in page
    # the other sections are there without receipts too, with an empty table
    assert collect(path).credits == d.credits
    # a committed reward epoch shows with its accounts, largest cumulative first
    r = runner.invoke(app, ["rewards", "compute", str(path), "--epoch", "1", "--pool", "1000",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    d = collect(path)
    assert d.epochs == [(1, 1000, summary["root"], len(summary["allocations"]))]
    want = sorted(((a["account"], int(a["amount"]), int(a["cumulative"]))
                   for a in summary["allocations"]), key=lambda x: (-x[2], x[0]))
    assert d.rewards == want and d.rewards_total == 1000
    page = render_html(d)
    assert 'id="plot-rewards"' in page and f"{want[0][2]:,}" in page
