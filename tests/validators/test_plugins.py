"""The validator contract and third-party validators registered through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest

from datanet.errors import ValidatorError
from datanet.validators.base import RuleValidator, Validator, check_validator_class
from datanet.validators.registry import validator_class, validator_names

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "validator-plugin"


@dataclass(frozen=True)
class _Config:
    limit: int = 1


class _Good(RuleValidator):
    name: ClassVar[str] = "good"
    config_cls = _Config
    reason_codes = ("bad_thing",)

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        return pa.nulls(batch.num_rows, pa.string())


def test_every_registered_validator_fulfils_the_contract() -> None:
    for name in validator_names():
        cls = validator_class(name)
        check_validator_class(cls, name, "built-in")
        assert cls.summary, name
    assert validator_names("keyed") == ["exact_duplicate", "near_duplicate", "flood"]


@pytest.mark.parametrize(("mutate", "message"), [
    ({"name": "other"}, "name='other' must be 'good'"),
    ({"config_cls": dict}, "config_cls must be a frozen dataclass"),
    ({"kind": "stream"}, "kind='stream' must be 'batch' or 'keyed'"),
    ({"reason_codes": ()}, "reason_codes must be a non-empty tuple of strings"),
])
def test_contract_violations_are_named(mutate, message) -> None:
    check_validator_class(_Good, "good", "test")
    bad = type("Bad", (_Good,), dict(mutate))
    with pytest.raises(ValidatorError, match=rf"validator 'good' \(test\): .*{message}"):
        check_validator_class(bad, "good", "test")
    with pytest.raises(ValidatorError, match="is not a subclass"):
        check_validator_class(dict, "good", "test")
    abstract = type("Abstract", (Validator,), {"name": "good", "config_cls": _Config,
                                               "reason_codes": ("x",)})
    with pytest.raises(ValidatorError, match="abstract methods not implemented: validate"):
        check_validator_class(abstract, "good", "test")


def test_validate_before_setup_is_a_clear_error() -> None:
    from datanet.validators.language import LanguageConfig, LanguageValidator
    from tests.validators.records import batch

    with pytest.raises(ValidatorError, match="setup\\(\\) must be called before validate"):
        LanguageValidator(LanguageConfig()).validate(batch(["Some text to check here."]))


@pytest.mark.slow
def test_example_plugin_installed_with_pip_runs_through_the_pipeline(tmp_path) -> None:
    """pip installs examples/validator-plugin (into a target dir, so the venv is untouched);
    a datanet whose spec configures it runs it like a built-in and stores its votes."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(PLUGIN)],
                   check=True)
    inputs = tmp_path / "in.jsonl"
    texts = ["Bake the bread in a hot oven until the crust sounds hollow when tapped.",
             "The stock market closed higher today after a long week of steady trading.",
             "Warm the pan first, then add the butter and wait until it stops foaming."]
    inputs.write_text("".join(json.dumps({"contributor": "0x" + f"{i + 1:02x}" * 20, "text": t})
                              + "\n" for i, t in enumerate(texts)))
    spec = tmp_path / "datanet.toml"
    spec.write_text('id = "plug"\nname = "Plug"\n'
                    '[validators.topic_keywords]\nkeywords = ["bake", "oven", "pan"]\n'
                    + "".join(f"[validators.{n}]\nenabled = false\n" for n in
                              ("language", "near_duplicate", "flood", "gopher_quality")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    dn = tmp_path / "dn"

    def cli(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "datanet", *args], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    cli("init", str(dn), "--spec", str(spec))
    cli("run", str(dn), str(inputs), "--no-anchor")
    votes = json.loads(cli("sql", str(dn), "SELECT verdict, reason FROM votes WHERE validator = "
                           "'topic_keywords' ORDER BY verdict", "--format", "json"))
    assert votes == [{"verdict": "accept", "reason": None}] * 2 + [
        {"verdict": "reject", "reason": "off_topic"}]
    # the package's keyed validator is installed too and on by default: distinct openings
    keyed = json.loads(cli("sql", str(dn), "SELECT verdict, count(*) AS n FROM votes WHERE "
                           "validator = 'repeated_opening' GROUP BY verdict", "--format", "json"))
    assert keyed == [{"verdict": "accept", "n": 3}]
    rejected = json.loads(cli("sql", str(dn), "SELECT text, reasons FROM rejected",
                              "--format", "json"))
    assert rejected == [{"text": texts[1], "reasons": ["off_topic"]}]
    # without the plugin installed, the same spec is an error naming the validator
    bare = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "datanet", "init", str(tmp_path / "dn2"), "--spec",
                        str(spec)], env=bare, capture_output=True, text=True)
    assert r.returncode == 1
    assert "validators.topic_keywords='topic_keywords' is not a known validator" in r.stderr


def test_readme_validator_table_is_the_generated_one() -> None:
    from typer.testing import CliRunner

    from datanet.cli import app
    from datanet.validators.registry import validators_markdown

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- validators-table")
    block = readme[readme.index("\n", start) + 1:readme.index("<!-- /validators-table -->")]
    assert block == validators_markdown(), "regenerate: datanet validators --format markdown"
    r = CliRunner().invoke(app, ["validators", "--format", "markdown"])
    assert r.exit_code == 0 and r.stdout == block
    rows = json.loads(CliRunner().invoke(app, ["validators", "--format", "json"]).stdout)
    assert [x["name"] for x in rows] == validator_names()
    assert rows[-1] == {"name": "flood", "kind": "keyed", "summary": validator_class(
        "flood").summary, "reason_codes": ["contributor_flood"], "plugin": False,
        "keys": {"max_records_per_contributor": "1000", "max_records_per_hour": "20",
                 "max_near_duplicates": "5", "shards": "32"}}


def test_keyed_contract_violations_are_named() -> None:
    from datanet.validators.keyed import KeyedValidator, KeyRows, Resolved

    class _Keyed(KeyedValidator):
        name: ClassVar[str] = "good"
        config_cls = _Config
        reason_codes = ("dup",)

        def key(self, batch: pa.RecordBatch) -> KeyRows:
            return KeyRows(pa.table({"shard_key": pa.array([], pa.uint64()),
                                     "_row": pa.array([], pa.int32())}))

        def resolve(self, shard) -> Resolved:
            return Resolved()

    check_validator_class(_Keyed, "good", "test")
    cases = [
        (type("NotKeyed", (_Good,), {"kind": "keyed"}), "a keyed validator subclasses"),
        (type("BatchKeyed", (_Keyed,), {"kind": "batch"}), "a keyed validator subclasses"),
        (type("Rank", (_Keyed,), {"vote_rank": ["x"]}), "vote_rank must be a tuple"),
        (type("Hist", (_Keyed,), {"history_kind": 3}), "history_kind must be a manifest kind"),
        (type("NoResolve", (KeyedValidator,), {"name": "good", "config_cls": _Config,
                                               "reason_codes": ("x",), "key": _Keyed.key}),
         "abstract methods not implemented: resolve"),
    ]
    for cls, message in cases:
        with pytest.raises(ValidatorError, match=rf"validator 'good' \(test\): .*{message}"):
            check_validator_class(cls, "good", "test")
