from __future__ import annotations

import pyarrow as pa

from datanet.privacy.normalise import normalise, normalise_text


def test_normalise_defeats_invisible_and_width_tricks():
    cases = {
        "Send  me\tthe\n\nrecipe ": "Send me the recipe",
        "ze\u200bro\u200dwidth\ufeff": "zerowidth",
        "bidi \u202eoverride\u202c here": "bidi override here",
        "ｆｕｌｌｗｉｄｔｈ １２３": "fullwidth 123",
        "ﬁne ligature": "fine ligature",
        "soft\u00adhyphen": "softhyphen",
        "": "",
    }
    got = normalise(pa.array(list(cases))).to_pylist()
    assert got == list(cases.values())
    assert [normalise_text(k) for k in cases] == list(cases.values())


def test_normalise_chunked_and_mixed_ascii():
    arr = pa.chunked_array([["plain  ascii"], ["caf\u00e9\u200b  au lait"]])
    assert normalise(arr).to_pylist() == ["plain ascii", "café au lait"]


def test_nfkc_composes_like_unicodedata():
    import unicodedata

    texts = ["caf\u00e9", "cafe\u0301", "Å ﬀ ①", "Ⅻ ㎏"]
    assert normalise(pa.array(texts)).to_pylist() == [
        unicodedata.normalize("NFKC", t) for t in texts]
    assert normalise(pa.array(["caf\u00e9"])).to_pylist() == normalise(
        pa.array(["cafe\u0301"])).to_pylist()


def test_whitespace_fold_matches_python_isspace():
    every_space = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
    texts = [f"a{every_space}b", f"{every_space}lead", "x\u2003\u2003y", "tab\tonly", "  ",
             "a \x0b b", "no_space"]
    assert normalise(pa.array(texts)).to_pylist() == [normalise_text(t) for t in texts]
    assert normalise(pa.array(texts)).to_pylist()[:3] == ["a b", "lead", "x y"]
