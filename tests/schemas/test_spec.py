from __future__ import annotations

import pickle

import pytest
from eth_abi import encode
from eth_hash.auto import keccak

from datanet.errors import SpecError
from datanet.schemas.ids import batch_id, content_hash, contribution_id, datanet_key
from datanet.schemas.spec import load_spec, parse_spec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "Bad Id"}, "id='Bad Id' must be 1-63 chars"),
        ({}, "id=None is required"),
        ({"id": "x", "limits": {"min_chars": -3}}, "limits.min_chars=-3 must be >= 0"),
        ({"id": "x", "limits": {"max_chars": 5, "min_chars": 10}},
         "limits.max_chars=5 must be >= limits.min_chars (10)"),
        ({"id": "x", "limits": {"min_chars": "ten"}}, "limits.min_chars='ten' must be an integer"),
        ({"id": "x", "limits": {"nope": 1}}, "limits.nope=1 is not a known key"),
        ({"id": "x", "fields": {"topic": {"type": "blob"}}},
         "fields.topic.type='blob' must be one of 'string', 'int'"),
        ({"id": "x", "fields": {"text": {"type": "string"}}}, "fields.text='text' is a built-in"),
        ({"id": "x", "fields": {"n": {"type": "string", "min": 1}}},
         "fields.n.min=1.0 min/max apply to int and float fields only"),
        ({"id": "x", "fields": {"n": {"type": "string", "pattern": "("}}},
         "fields.n.pattern='(' must be a valid regular expression"),
        ({"id": "x", "validators": {"nosuch": {}}}, "validators.nosuch='nosuch' is not a known"),
        ({"id": "x", "validators": {"limits": {"enabled": "yes"}}},
         "validators.limits.enabled='yes' must be true or false"),
        ({"id": "x", "bogus": 1}, "bogus=1 is not a known top-level key"),
        ({"id": "x", "pipeline": {"batch_rows": 0}},
         "pipeline.batch_rows=0 must be between 1 and 1000000"),
        ({"id": "x", "pipeline": {"target_file_mb": 0}},
         "pipeline.target_file_mb=0 must be between 1 and 4096"),
        ({"id": "x", "pipeline": {"target_file_mb": 5000}},
         "pipeline.target_file_mb=5000 must be between 1 and 4096"),
        ({"id": "x", "pipeline": {"local_workers": -1}},
         "pipeline.local_workers=-1 must be between 0 and 256"),
    ],
)
def test_bad_spec_names_key_value_and_allowed(data, message):
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert message in str(err.value)


def test_spec_file_errors_name_the_file(tmp_path):
    p = tmp_path / "datanet.toml"
    p.write_text('id = "ok"\n[limits]\nmin_chars = -1\n')
    with pytest.raises(SpecError, match=r"datanet.toml: limits.min_chars=-1 must be >= 0"):
        load_spec(p)
    p.write_text("id = \n")
    with pytest.raises(SpecError, match=r"datanet.toml:1:6: invalid TOML: Invalid value$"):
        load_spec(p)


def test_spec_error_pickles():
    err = SpecError("limits.min_chars", -3, "must be >= 0", source="a.toml")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "a.toml: limits.min_chars=-3 must be >= 0"


def test_contribution_id_is_solidity_abi_encode():
    h = content_hash("hello world")
    assert h == "0x" + keccak(b"hello world").hex()
    addr = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
    expected = keccak(encode(["bytes32", "address", "bytes32"],
                             [datanet_key("dn"), addr, bytes.fromhex(h[2:])]))
    assert contribution_id("dn", addr, h) == "0x" + expected.hex()
    assert contribution_id("other", addr, h) != contribution_id("dn", addr, h)


def test_batch_id_is_order_independent_and_input_sensitive():
    ids = [content_hash(str(i)) for i in range(5)]
    assert batch_id("dn", ids) == batch_id("dn", list(reversed(ids)))
    assert batch_id("dn", ids) != batch_id("dn", ids[:4])
    assert batch_id("dn", ids) != batch_id("other", ids)


def test_secret_looking_values_are_never_echoed():
    with pytest.raises(SpecError) as err:
        parse_spec({"id": "x", "anchoring": {"private_key": "0x" + "ab" * 32}})
    assert "abab" not in str(err.value)
    assert "anchoring.private_key=<redacted> is not a known key" in str(err.value)
