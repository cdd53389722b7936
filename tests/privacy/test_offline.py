"""Nothing is downloaded at run time: the validator works with sockets disabled
(pytest-socket), in a fresh interpreter so no earlier import warmed a cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, socket, traceback
    import pytest_socket

    pytest_socket.disable_socket(allow_unix_socket=False)
    attempts = []
    guarded = socket.socket

    class Recording(guarded):
        def __new__(cls, *args, **kwargs):
            attempts.append(repr(args) + ''.join(traceback.format_stack(limit=8)))
            return guarded.__new__(cls, *args, **kwargs)

    socket.socket = Recording

    import pyarrow as pa
    from datanet.schemas.spec import parse_spec
    from datanet.validators.registry import enabled_validators

    spec = parse_spec({"id": "offline", "validators": {"pii": {"ner_model": "en_core_web_lg"}}})
    (v,) = [x for x in enabled_validators(spec) if x.name == "pii"]
    v.setup()
    batch = pa.record_batch({"contribution_id": ["a", "b"],
                             "text": ["mail jane.doe@example.co.uk", "see example.com"]})
    votes = v.validate(batch).votes
    import sys
    if "--control" in sys.argv:  # stock tldextract: fetches the suffix list on first use
        import tldextract
        try:
            tldextract.extract("jane.doe@example.co.uk")
        except Exception as exc:  # pytest-socket's SocketBlockedError surfaces here
            attempts.append(type(exc).__name__)
    print(json.dumps({"attempts": attempts, "reasons": votes.column("reason").to_pylist(),
                      "ner": v.report()["ner"]}))
""")


def _run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "TLDEXTRACT_CACHE": str(tmp_path / "tld")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_validator_runs_with_sockets_disabled(tmp_path):
    out, stderr = _run(tmp_path)
    # urllib3 probes IPv6 support at import by creating (never connecting) a socket to ::1;
    # every other socket would be a download attempt.
    assert [a for a in out["attempts"] if "_has_ipv6" not in a] == []
    assert out["reasons"] == ["pii:EMAIL_ADDRESS", None]
    assert out["ner"].startswith("disabled: spaCy model 'en_core_web_lg' is not installed")
    assert "Downloading" not in stderr
    assert not (tmp_path / "tld").exists()


def test_control_stock_tldextract_tries_the_network(tmp_path):
    """The guard above does see a download attempt when one happens."""
    out, _ = _run(tmp_path, "--control")
    assert [a for a in out["attempts"] if "_has_ipv6" not in a] != []


@pytest.mark.disable_socket
def test_in_process_detection_with_pytest_socket(make_batch):
    """The same under pytest-socket's marker in this process."""
    from datanet.validators.pii import PiiConfig, PiiValidator

    v = PiiValidator(PiiConfig())
    v.setup()
    result = v.validate(make_batch(["write to bob@mail.example.net", "nothing"]))
    assert result.votes.column("reason").to_pylist() == ["pii:EMAIL_ADDRESS", None]


def test_ner_with_a_local_spacy_pipeline(tmp_path, make_batch):
    """NER runs when the named model is installed: a tiny spaCy pipeline saved to disk
    (entity ruler, no weights, nothing downloaded) stands in for a model package."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "ada"},
                                                        {"LOWER": "lovelace"}]}])
    model_dir = tmp_path / "tiny_ner"
    nlp.to_disk(model_dir)
    from datanet.validators.pii import PiiConfig, PiiValidator

    v = PiiValidator(PiiConfig(ner_model=str(model_dir), entities={"PERSON": "redact"}))
    v.setup()
    assert v.report()["ner"] == f"enabled: spaCy model {str(model_dir)!r}"
    result = v.validate(make_batch(["Notes by Ada Lovelace on engines.", "mail a@b.example.com"]))
    assert result.text.to_pylist()[0] == "Notes by <PERSON> on engines."
    assert result.votes.column("reason").to_pylist() == [None, "pii:EMAIL_ADDRESS"]
