"""Quality rules: per rule, a record that trips exactly that reason; good records pass."""

from __future__ import annotations

import pytest

from datanet.errors import SpecError
from datanet.validators.registry import validator_class, validator_config
from tests.validators.records import batch, spec
from tests.validators.texts import GOOD

BASE = GOOD[0]
LONG = ("Season the pan well and heat it slowly so the surface browns evenly without any "
        "scorching at the edges of the metal")  # 20 words, one line, no terminal punctuation
#: passes every rule even at the tight test settings (no repeated n-gram at all)
OK = ("Rest the steak for five minutes before slicing it, so the juices settle back into "
      "the meat evenly and do not run out.")
WORD = "Caramelised-onion-and-roasted-garlic-butter-" * 2  # one long token

CASES = [
    ("gopher_quality", "gopher_min_words",
     "Rest the steak first.", {}),
    ("gopher_quality", "gopher_max_words", BASE, {"max_words": 40}),
    ("gopher_quality", "gopher_mean_word_length",
     "If it is hot, do as I do: go to the pan, put an egg in it, and let it be. So it is, "
     "and so we go on to eat it at once.", {}),
    ("gopher_quality", "gopher_symbol_ratio",
     BASE + " #steak #grill #dinner #beef #meat #bbq #food #cooking", {}),
    ("gopher_quality", "gopher_bullet_lines",
     "Shopping list for the roast dinner with the family:\n"
     + "\n".join(f"- {x} for the roast and the gravy." for x in
                 ("Potatoes", "Carrots", "Onions", "Garlic", "Rosemary", "Butter", "Flour",
                  "Stock", "Wine", "Salt")), {}),
    ("gopher_quality", "gopher_ellipsis_lines",
     "I kept stirring the sauce over a low flame and it still would not thicken...\n"
     "Then I added a spoon of flour mixed with a little of the cold water...\n"
     "In the end it was a good sauce, thick and glossy, and the whole family liked it "
     "with the roast chicken and the potatoes.", {}),
    ("gopher_quality", "gopher_alpha_words",
     "Combine 250 grams flour with 200 grams sugar, 150 grams butter and 100 grams "
     "chocolate, then bake 180 degrees for 25 minutes, 190 degrees for 10 minutes, 170 "
     "degrees for 5 minutes with the fan.", {}),
    ("gopher_quality", "gopher_stop_words",
     "Sear steaks quickly over high heat, flip once, then rest them briefly under foil; "
     "slice across grain, season generously, serve warm alongside roasted potatoes plus "
     "crisp green salad.", {}),
    ("gopher_repetition", "gopher_dup_line_frac",
     "Yes.\nYes.\nYes.\n" + BASE, {}),
    ("gopher_repetition", "gopher_dup_para_frac",
     "Yes.\nNo.\n\nYes.\nNo.\n\n" + (GOOD[1] + " " + BASE).replace(". ", ".\n"), {}),
    ("gopher_repetition", "gopher_dup_line_char_frac",
     f"{WORD}\n{WORD}\n{OK}", {"max_dup_line_frac": 1.0}),
    ("gopher_repetition", "gopher_dup_para_char_frac",
     f"{WORD}\n\n{WORD}\n\n{OK}", {"max_dup_line_frac": 1.0, "max_dup_line_char_frac": 1.0,
                                      "max_dup_para_frac": 1.0}),
    ("gopher_repetition", "gopher_top_2_gram",
     "The olive oil: buy olive oil, cook using olive oil, dress salads in olive oil, fry "
     "eggs inside olive oil and store olive oil in the dark.", {"min_words_for_ngrams": 0}),
    ("gopher_repetition", "gopher_top_3_gram",
     BASE + " Rest it for a while.", {"max_top_ngram_char_frac": [1.0, 0.0, 1.0],
                                        "min_words_for_ngrams": 0}),
    ("gopher_repetition", "gopher_top_4_gram",
     BASE + " Rest it for about an hour.", {"max_top_ngram_char_frac": [1.0, 1.0, 0.0],
                                              "min_words_for_ngrams": 0}),
    ("gopher_repetition", "gopher_dup_5_gram",
     BASE + " Rest it for about five hours.", {"max_dup_ngram_char_frac": [0.0, 1, 1, 1, 1, 1],
                                                 "min_words_for_ngrams": 0}),
    ("gopher_repetition", "gopher_dup_10_gram",
     BASE + " " + " ".join(BASE.split()[:14]) + " and so on.",
     {"max_dup_ngram_char_frac": [1, 1, 1, 1, 1, 0.1], "min_words_for_ngrams": 0}),
    ("c4_quality", "c4_lorem_ipsum", BASE + " Lorem ipsum dolor sit amet.", {}),
    ("c4_quality", "c4_curly_bracket", BASE + " Use {salt} to taste.", {}),
    ("c4_quality", "c4_javascript", BASE + " Please enable JavaScript.", {"disable": []}),
    ("c4_quality", "c4_policy", BASE + " Read our privacy policy.", {"disable": []}),
    ("c4_quality", "c4_word_length", BASE + " " + "a" * 1001 + ".", {}),
    ("c4_quality", "c4_min_sentences", LONG, {}),
    ("fineweb_quality", "fineweb_line_punct_ratio", LONG, {}),
    ("fineweb_quality", "fineweb_short_line_ratio",
     "Ingredients.\nTwo eggs.\nSome milk.\n" + BASE, {}),
    ("fineweb_quality", "fineweb_char_dup_ratio",
     "Serves four.\nServes four.\n" + BASE, {"max_short_line_ratio": 1.0}),
    ("fineweb_quality", "fineweb_list_ratio",
     "\n".join(f"Add {x}." for x in ("salt", "oil", "rice", "beans", "fish", "garlic",
                                       "onion", "pepper", "lemon", "thyme")),
     {"max_short_line_ratio": 1.0}),
]


def _validator(name, table=None):
    s = spec({name: table or {}})
    return validator_class(name)(validator_config(s, name), s)


@pytest.mark.parametrize(("name", "reason", "text", "table"), CASES,
                         ids=[c[1] for c in CASES])
def test_rule_trips_exactly_its_reason(name, reason, text, table):
    votes = _validator(name, table).validate(batch([text, OK])).votes.to_pylist()
    assert [(v["verdict"], v["reason"]) for v in votes] == [("reject", reason),
                                                            ("accept", None)]
    disabled = {**table, "disable": [*table.get("disable", ()), reason]}
    votes = _validator(name, disabled).validate(batch([text])).votes.to_pylist()
    assert votes[0]["verdict"] == "accept", votes[0]


@pytest.mark.parametrize("name", ["gopher_quality", "gopher_repetition", "c4_quality",
                                  "fineweb_quality"])
def test_realistic_qa_paragraphs_pass_defaults(name):
    votes = _validator(name).validate(batch(GOOD)).votes
    assert votes.column("verdict").to_pylist() == ["accept"] * len(GOOD)


def test_every_reason_code_has_a_case():
    for name in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"):
        codes = set(validator_class(name).reason_codes)
        covered = {c[1] for c in CASES if c[0] == name}
        missing = codes - covered - {"gopher_dup_6_gram",
                                     "gopher_dup_7_gram", "gopher_dup_8_gram",
                                     "gopher_dup_9_gram"}
        assert not missing, missing


def test_ngram_rules_apply_from_50_words():
    short = ("Start with half the amount and add more after tasting. I already tried to start "
             "with half the amount and add more after tasting, but no luck so far.")
    assert len(short.split()) < 50
    votes = _validator("gopher_repetition").validate(batch([short])).votes
    assert votes.column("verdict").to_pylist() == ["accept"]
    strict = _validator("gopher_repetition", {"min_words_for_ngrams": 10})
    assert strict.validate(batch([short])).votes.column("reason").to_pylist() == [
        "gopher_top_3_gram"]


def test_bad_config_names_key_and_allowed_values():
    with pytest.raises(SpecError, match=r"validators.c4_quality.disable\[0\]='nope' must be"):
        spec({"c4_quality": {"disable": ["nope"]}})
    with pytest.raises(SpecError, match=r"gopher_quality\.min_alpha_words_ratio=2\.0 must be"):
        spec({"gopher_quality": {"min_alpha_words_ratio": 2.0}})


def _reference_fracs(norm: str, top_ns: tuple[int, ...], dup_ns: tuple[int, ...]):
    """Gopher's n-gram fractions written the usual way (datatrove's find_top_duplicate /
    find_all_duplicate without the skip), one record at a time."""
    from collections import Counter

    words = norm.split()
    chars = max(len(norm), 1)
    top = []
    for n in top_ns:
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        best = max((c * len(" ".join(g)) for g, c in counts.items() if c > 1), default=0)
        top.append(best / chars)
    dup = []
    for n in dup_ns:
        seen: set[tuple[str, ...]] = set()
        covered = [False] * len(words)
        for i in range(len(words) - n + 1):
            g = tuple(words[i:i + n])
            if g in seen:
                covered[i:i + n] = [True] * n
            seen.add(g)
        dup.append(sum(len(w) for w, c in zip(words, covered, strict=True) if c) / chars)
    return top, dup


def test_repetition_fractions_equal_a_per_record_reference() -> None:
    import random

    import numpy as np
    import pyarrow as pa

    from datanet.privacy.normalise import normalise
    from datanet.validators.quality import DUP_NGRAMS, TOP_NGRAMS
    from datanet.validators.textstats import TextStats
    from tests.validators.texts import GOOD as texts

    rng = random.Random(7)
    docs = []
    for i in range(300):
        base = " ".join(rng.choice(texts) for _ in range(rng.randint(1, 4)))
        words = base.split()
        piece = " ".join(words[: rng.randint(1, 12)])
        docs.append(base + (" " + piece) * rng.randint(0, 5) if i % 4 else base)
    docs += ["", "x", "a b a b a b a b", "the cat " * 40, "ab ab ab ab ab ab ab ab ab ab ab"]
    arr = pa.array(docs)
    norm = normalise(arr)
    s = TextStats(pa.RecordBatch.from_arrays([arr, norm], names=["text", "text_norm"]))
    eligible = np.arange(len(docs)) % 7 != 3
    top, dup = s.repetition_fracs(TOP_NGRAMS, DUP_NGRAMS, eligible)
    for i, text in enumerate(norm.to_pylist()):
        want_top, want_dup = (_reference_fracs(text, TOP_NGRAMS, DUP_NGRAMS) if eligible[i]
                              else ([0.0] * 3, [0.0] * 6))
        assert top[i].tolist() == pytest.approx(want_top, abs=0, rel=1e-12), (i, text)
        assert dup[i].tolist() == pytest.approx(want_dup, abs=0, rel=1e-12), (i, text)
    assert (top[:, 0] > 0).sum() > 200 and (dup[:, 5] > 0).sum() > 50  # the cases are exercised


def test_text_marks_equal_the_arrow_counts_they_replace() -> None:
    """One byte pass gives exactly what Arrow's substring / regex counts gave, on random
    mixes of the bytes that matter (dots, sentence ends, RE2's \\s and the whitespace it
    leaves out, the three bytes of '…' and its neighbours, multi-byte text)."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    from datanet.validators.textstats import TextStats

    rng = random.Random(11)
    alphabet = [".", ".", ".", "!", "?", "#", "{", "\n", "\t", "\r", "\f", "\v", " ", "a", "Z",
                "…", "‥", "€", "é", "\u2028", "\u00a0", "x"]
    docs = ["", ".", "..", "...", "....", "......", "a.", "a.b", "a. b", "?!.", "…", "……",
            ".\v", ".\f", "end!", "{}", "\n\n", "x...\n"]
    docs += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
             for _ in range(3000)]
    arr = pa.array(docs)
    s = TextStats(pa.RecordBatch.from_arrays([arr, arr], names=["text", "text_norm"]))
    got = s.marks("norm")
    want = {
        "hash": pc.count_substring(arr, "#"),
        "dots": pc.count_substring(arr, "..."),
        "ellipsis": pc.count_substring(arr, "…"),
        "curly": pc.count_substring(arr, "{"),
        "newline": pc.count_substring(arr, "\n"),
        "sentence": pc.count_substring_regex(arr, r"[.!?]+(\s|$)"),
    }
    for name, counts in want.items():
        assert got[name].tolist() == counts.to_pylist(), name
    assert sum(got["sentence"]) > 1000 and sum(got["dots"]) > 100 and sum(got["ellipsis"]) > 500


def test_lines_split_per_newline_equal_the_split_on_newline_runs() -> None:
    """Lines come from a literal split on each newline; after trimming and dropping empty
    pieces they are exactly the non-empty trimmed pieces of the regex split on ``\\n+``."""
    import random

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from datanet.validators.textstats import TextStats

    rng = random.Random(3)
    alphabet = ["\n", "\n", "\r", "\r\n", " ", "\t", "\u2028", "\u00a0", "a", "b c", "é", "."]
    docs = ["", "\n", "\n\n\n", " a \n\n b ", "a\rb\n\rc"]
    docs += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
             for _ in range(2000)]
    arr = pa.array(docs)
    lines, doc = TextStats(pa.RecordBatch.from_arrays([arr, arr],
                                                      names=["text", "text_norm"])).lines
    want_lines, want_doc = [], []
    for i, parts in enumerate(pc.split_pattern_regex(pc.replace_substring(arr, "\r", ""),
                                                     r"\n+").to_pylist()):
        for piece in pc.utf8_trim_whitespace(pa.array(parts, pa.string())).to_pylist():
            if piece:
                want_lines.append(piece)
                want_doc.append(i)
    assert lines.to_pylist() == want_lines and doc.tolist() == want_doc
    assert len(want_lines) > 2000 and len(np.unique(doc)) > 1500


def test_words_of_spaced_text_equal_arrows_whitespace_split() -> None:
    """The compiled split on U+0020 gives exactly Arrow's ``utf8_split_whitespace`` pieces
    (empty ones dropped) when a space is the only whitespace; a text holding any other
    whitespace character (every code point Python's ``str.isspace`` accepts, which is Arrow's
    set too) sends the batch to Arrow."""
    import random
    import sys

    import pyarrow as pa
    import pyarrow.compute as pc

    from datanet.validators._kernels import space_split
    from datanet.validators.textstats import _PUNCT, TextStats, utf8_buffers

    def arrow_words(arr: pa.Array) -> tuple[list[str], list[int]]:
        words, doc = [], []
        for i, parts in enumerate(pc.utf8_split_whitespace(arr).to_pylist()):
            for w in parts or []:
                if w:
                    words.append(w)
                    doc.append(i)
        return words, doc

    spaces = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()]
    rng = random.Random(5)
    alphabet = [" ", " ", " ", "a", "Zz", "é", "É", "€", "\u2027", "\u202e", "\u200b",
                "\u3001", "\u1681", "\u00a1", "\u2010", "\U0001f600", "\x00", "\x1b", "!",
                "The", "«", "»", "...", "'"]
    docs = ["", " ", "  a  b  ", "a", "a b", " a", "a "]
    docs += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
             for _ in range(3000)]
    arr = pa.array(docs)
    data, offsets, doc, ok = space_split(*utf8_buffers(arr))
    got = pa.StringArray.from_buffers(len(doc), pa.py_buffer(offsets), pa.py_buffer(data))
    assert ok and (got.to_pylist(), doc.tolist()) == arrow_words(arr)
    assert len(doc) > 6_000
    # every other whitespace character, alone or at a text's end, is refused
    for c in spaces:
        if c != " ":
            for text in (f"a{c}b", c, f"ab {c}"):
                assert not space_split(*utf8_buffers(pa.array(["x y", text])))[3], hex(ord(c))
    # and every non-whitespace code point is a word character, as for Arrow
    others = pa.array([f"a{chr(c)}b c" for c in range(0x20, sys.maxunicode + 1, 7)
                       if not chr(c).isspace() and not 0xD800 <= c <= 0xDFFF])
    data, offsets, doc, ok = space_split(*utf8_buffers(others))
    got = pa.StringArray.from_buffers(len(doc), pa.py_buffer(offsets), pa.py_buffer(data))
    assert ok and (got.to_pylist(), doc.tolist()) == arrow_words(others)
    # TextStats takes the same words either way (a batch with a tab goes through Arrow)
    for col in (arr, pa.array([*docs, "tab\there"])):
        stats = TextStats(pa.RecordBatch.from_arrays([col, col], names=["text", "text_norm"]))
        assert (stats.words.to_pylist(), stats.word_doc.tolist()) == arrow_words(col)
        # bare words: the distinct words lowered and trimmed, then encoded again, give the
        # ids and dictionary of encoding every lowered, trimmed word
        ids, distinct = stats.bare_codes
        want = pc.dictionary_encode(pc.utf8_trim(pc.utf8_lower(stats.words), _PUNCT))
        assert ids.tolist() == want.indices.to_pylist()
        assert distinct.to_pylist() == want.dictionary.to_pylist()
        assert len(distinct) < len(set(stats.words.to_pylist()))  # words were merged
