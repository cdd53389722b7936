"""Operator input to `datanet run`: unknown options, runner typos and job-server-less runners."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from datanet.cli import app
from datanet.errors import OptionError
from datanet.pipelines.options import (
    DASK_RUNNER,
    beam_option_names,
    canonical_runner,
    check_beam_args,
    check_runner,
    split_run_args,
)
from datanet.pipelines.run import run_datanet
from tests.conftest import record, write_jsonl

runner = CliRunner()


def test_beam_option_names_come_from_beams_option_classes() -> None:
    names = beam_option_names()
    assert names["--direct_num_workers"] is True and names["--save_main_session"] is False
    assert "--dask_client_address" in names and "--flink_job_server_jar" in names
    assert "--worker" not in names and "--no-anchor" not in names


@pytest.mark.parametrize(("arg", "suggestion"), [
    ("--no-anchr", "--no-anchor"),
    ("--worker=2", "--workers"),
    ("--direct_num_workerz=2", "--direct_num_workers"),
])
def test_unknown_options_are_refused_with_a_suggestion(arg, suggestion) -> None:
    flag = arg.split("=")[0]
    with pytest.raises(OptionError, match=rf"^{flag}: unknown option; did you mean "
                                          rf"{suggestion}\?"):
        split_run_args(["in.jsonl", arg], also_known=("--no-anchor", "--workers"))


def test_split_keeps_beam_options_and_their_separate_values() -> None:
    got = split_run_args(["a.jsonl", "--direct_num_workers", "2", "b/*.csv",
                          "--save_main_session", "c.parquet", "--experiments=x"])
    assert got.inputs == ("a.jsonl", "b/*.csv", "c.parquet")
    assert got.beam_args == ("--direct_num_workers=2", "--save_main_session", "--experiments=x")


@pytest.mark.parametrize(("name", "canonical"), [
    ("DirectRunner", "DirectRunner"), ("direct", "DirectRunner"),
    ("directrunner", "DirectRunner"), ("dask", DASK_RUNNER), ("DaskRunner", DASK_RUNNER),
    ("FnApiRunner", "FnApiRunner"), ("spark", "SparkRunner"), ("FLINK", "FlinkRunner"),
    ("my.pkg.MyRunner", "my.pkg.MyRunner"),
])
def test_runner_names(name, canonical) -> None:
    assert canonical_runner(name) == canonical


def test_runner_typo_lists_the_valid_runners() -> None:
    with pytest.raises(OptionError) as exc:
        canonical_runner("Sprak")
    assert str(exc.value) == (
        "--runner 'Sprak' is not a runner; did you mean SparkRunner? valid: DirectRunner, dask, "
        "FnApiRunner, FlinkRunner, SparkRunner, PortableRunner, PrismRunner, DataflowRunner "
        "(or a fully qualified PipelineRunner class)")


@pytest.mark.parametrize(("name", "args", "needs"), [
    ("Spark", [], "--job_endpoint=… or --spark_job_server_jar=…"),
    ("Flink", ["--flink_master=localhost:8081"], "--job_endpoint=… or --flink_job_server_jar=…"),
    ("PortableRunner", [], "--job_endpoint=…"),
    ("prism", [], "--prism_location=…"),
])
def test_runners_without_a_job_server_are_refused(name, args, needs) -> None:
    with pytest.raises(OptionError, match=f"needs its job server: give {needs} "):
        check_runner(name, args)


def test_runners_with_a_job_server_pass() -> None:
    assert check_runner("Spark", ["--job_endpoint=localhost:8099"]) == "SparkRunner"
    assert check_runner("flink", ["--flink_job_server_jar=/opt/js.jar"]) == "FlinkRunner"
    with pytest.raises(OptionError, match=r"DataflowRunner needs --region=…, --temp_location=…"):
        check_runner("Dataflow", ["--project=p"])


def test_library_run_refuses_unknown_beam_args(tiny_store, tmp_path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [record(0)])
    with pytest.raises(OptionError, match="--direct_num_workerz: unknown option"):
        run_datanet(tiny_store, [str(src)], beam_args=["--direct_num_workerz=2"])
    assert check_beam_args(["--direct_num_workers=2"]) == ("--direct_num_workers=2",)
    assert tiny_store.manifests() == []


@pytest.mark.parametrize(("args", "message"), [
    (["--no-anchr"], "--no-anchr: unknown option; did you mean --no-anchor?"),
    (["--worker=2"], "--worker: unknown option; did you mean --workers?"),
    (["--direct_num_workerz=2"], "--direct_num_workerz: unknown option; did you mean "
                                 "--direct_num_workers?"),
    (["--runner", "Sprak"], "did you mean SparkRunner? valid: DirectRunner, dask,"),
    (["--runner", "Spark"], "--runner SparkRunner needs its job server"),
])
def test_cli_refuses_before_running(tiny_store, tmp_path, args, message) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [record(0)])
    res = runner.invoke(app, ["run", str(tiny_store.root), str(src), *args])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert tiny_store.manifests() == []


def test_spec_pipeline_options_are_checked_and_runner_is_not_an_option(tmp_path) -> None:
    from datanet.store.layout import init_datanet
    from tests.conftest import TINY_SPEC

    store = init_datanet(tmp_path / "dn", TINY_SPEC + '\n[pipeline]\noptions = '
                                                      '["--direct_num_workerz=2"]\n')
    src = write_jsonl(tmp_path / "a.jsonl", [record(0)])
    with pytest.raises(OptionError, match=r"datanet.toml: pipeline.options: "
                                          r"--direct_num_workerz: unknown option; did you mean "
                                          r"--direct_num_workers\?"):
        run_datanet(store, [str(src)])
    with pytest.raises(OptionError, match="--runner among the Beam options would bypass"):
        check_beam_args(["--runner=SparkRunner"])
