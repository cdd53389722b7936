"""Great Expectations suites: row-level failures become reason codes, batch-level go to report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from datanet.errors import ValidatorError
from datanet.schemas.spec import parse_spec
from datanet.validators.gx import ExpectationsConfig, ExpectationsValidator
from tests.validators.records import batch
from tests.validators.texts import GOOD

SUITE = {
    "name": "cooking",
    "expectations": [
        {"type": "expect_column_value_lengths_to_be_between",
         "kwargs": {"column": "text", "min_value": 60}},
        {"type": "expect_column_values_to_not_match_regex",
         "kwargs": {"column": "text_norm", "regex": "(?i)microwave"}},
        {"type": "expect_table_row_count_to_be_between",
         "kwargs": {"min_value": 10}},
    ],
}


@pytest.fixture(scope="module")
def suite_spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("dn")
    (root / "suite.json").write_text(json.dumps(SUITE))
    spec_path = root / "datanet.toml"
    spec_path.write_text('id = "cooking-qa"\n[validators.expectations]\nsuite = "suite.json"\n')
    return parse_spec({"id": "cooking-qa", "validators": {"expectations": {
        "suite": "suite.json"}}}, source=str(spec_path))


def test_row_failures_map_to_reason_codes_and_batch_results_to_report(suite_spec):
    v = ExpectationsValidator(ExpectationsConfig(suite="suite.json"), suite_spec)
    v.setup()
    texts = [GOOD[0], "Short but fine text.", GOOD[5], "Tiny."]
    votes = v.validate(batch(texts)).votes.to_pylist()
    assert [(x["verdict"], x["reason"]) for x in votes] == [
        ("accept", None),
        ("reject", "expectation:expect_column_value_lengths_to_be_between:text"),
        ("reject", "expectation:expect_column_values_to_not_match_regex:text_norm"),
        ("reject", "expectation:expect_column_value_lengths_to_be_between:text"),
    ]
    assert json.loads(votes[1]["details"]) == {
        "failed": ["expectation:expect_column_value_lengths_to_be_between:text"]}
    assert v.report() == {"suite": "cooking", "batch_expectations": [
        {"type": "expect_table_row_count_to_be_between", "column": None, "success": False,
         "observed_value": 4}]}


def test_no_suite_abstains_without_importing_gx():
    code = ("import sys; from datanet.validators.gx import *; from tests.validators.records "
            "import batch; v = ExpectationsValidator(ExpectationsConfig()); "
            "r = v.validate(batch(['hello there'])).votes.column('verdict').to_pylist(); "
            "print(r, 'great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['abstain'] False"


def test_missing_or_bad_suite_is_a_clear_error(tmp_path):
    with pytest.raises(ValidatorError, match="does not exist"):
        ExpectationsValidator(ExpectationsConfig(suite=str(tmp_path / "nope.json")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"expectations": 3}')
    with pytest.raises(ValidatorError, match="must be a GX suite"):
        ExpectationsValidator(ExpectationsConfig(suite=str(bad)))
