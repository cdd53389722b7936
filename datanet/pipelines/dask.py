"""Run the datanet pipeline on a ``dask.distributed`` cluster through Beam's DaskRunner.

The graph is the same :func:`datanet.pipelines.run.build_pipeline` the DirectRunner runs; this
module only provides the cluster: either an existing scheduler (``address``, e.g. a Dask
cluster on Kubernetes or Slurm via dask-jobqueue) or a ``LocalCluster`` of worker processes on
127.0.0.1 started for the run and shut down afterwards. Workers write content-addressed Parquet
files; the driver commits the manifest only after the whole Dask graph succeeded, so a worker
that dies mid-run either gets its tasks retried by the scheduler (same file names, same
result) or fails the run with nothing committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from datanet.errors import DatanetError

if TYPE_CHECKING:
    from datanet.store.layout import DatanetStore

__all__ = ["DASK_RUNNER", "local_cluster", "run_on_dask", "dask_beam_args", "check_cluster"]

log = logging.getLogger(__name__)

#: Beam's DaskRunner, named by path so Beam never falls back to its default runner.
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"

#: Seconds to wait for a scheduler connection / the first worker (distributed's own connect
#: timeout is 30 s; a wrong address should fail faster and say so).
CONNECT_TIMEOUT_S = 20


def _normalise_address(address: str) -> str:
    """``HOST:PORT`` → ``tcp://HOST:PORT`` (other schemes such as ``tls://`` are kept)."""
    address = address.strip()
    if not address:
        raise DatanetError("--dask-address is empty; give HOST:PORT of a Dask scheduler")
    return address if "://" in address else f"tcp://{address}"


@contextlib.contextmanager
def local_cluster(workers: int = 2, *, threads_per_worker: int = 1,
                  memory_limit: str | int | None = "auto",
                  local_directory: str | None = None) -> Iterator[str]:
    """A ``LocalCluster`` of ``workers`` processes on 127.0.0.1 (no dashboard); yields its address.

    One thread per worker: the DoFns hold the GIL in Python/Arrow code, so processes, not
    threads, give parallelism. The cluster and its nannies are closed on exit, also on errors.
    ``local_directory``: the workers' spill / scratch space (default Dask's, which is
    ``/tmp/dask-scratch-space`` and stays behind).
    """
    if workers < 1:
        raise DatanetError(f"workers={workers} must be >= 1")
    import dask
    from distributed import LocalCluster

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    # the nannies' lock files go to dask's temporary-directory, not to local_directory
    tmp = ({"temporary-directory": local_directory} if local_directory else {})
    try:
        with dask.config.set(tmp):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                host="127.0.0.1", scheduler_port=0, memory_limit=memory_limit,
                silence_logs=logging.WARNING, dashboard_address=None,
                local_directory=local_directory,
                # workers import datanet first: its log filters (datanet._logging) are then in
                # place before Beam's import-time warnings
                preload=["datanet"],
                # no dashboard; the scheduler's health/metrics endpoint on a free local port
                # instead of the fixed 8787 (concurrent runs, other services)
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            )
            try:
                yield cluster.scheduler_address
            finally:
                cluster.close()
    finally:
        quiet.setLevel(level)


def _worker_versions() -> dict[str, str]:
    """Versions a process imports (runs on the workers through ``Client.run``)."""
    import apache_beam
    import pyarrow

    import datanet

    return {"datanet": datanet.__version__, "apache-beam": apache_beam.__version__,
            "pyarrow": pyarrow.__version__}


def check_cluster(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> int:
    """Connect to ``address``, wait for a worker, check workers import the same versions.

    Returns the number of workers. Raises :class:`DatanetError` naming the problem and the fix
    (an unreachable scheduler, no workers, or workers without ``datanet`` / other versions).
    """
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DatanetError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start one with "
            "`dask scheduler` + `dask worker ADDRESS`, or omit --dask-address to run a local "
            "cluster") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise DatanetError(f"the Dask scheduler at {address} has no workers after "
                               f"{timeout:.0f}s; start some with `dask worker {address}`"
                               ) from None
        try:
            found = client.run(_worker_versions)
        except ModuleNotFoundError as exc:
            raise DatanetError(
                f"Dask workers at {address} cannot import {exc.name!r}; install the same "
                "datanet distribution (pip install datanet) on every worker") from None
        mine = _worker_versions()
        for worker, versions in found.items():
            if versions != mine:
                raise DatanetError(
                    f"Dask worker {worker} runs {versions}, the driver {mine}; install the "
                    "same versions on the driver and every worker")
        return len(found)
    finally:
        client.close()


def dask_beam_args(address: str, beam_args: Sequence[str] = ()) -> list[str]:
    """Beam options for the DaskRunner on ``address`` (a caller's ``--runner`` is refused)."""
    for arg in beam_args:
        if arg.startswith("--runner") or arg.startswith("--dask_client_address"):
            raise DatanetError(
                f"{arg!r} conflicts with --runner dask; use --dask-address HOST:PORT for the "
                "scheduler, or --runner DaskRunner --dask_client_address=… without 'dask'")
    return [f"--dask_client_address={address}", *beam_args]


def _close_runner_clients(address: str) -> None:
    """Close the ``Client`` the DaskRunner opened (it never closes it; it would retry forever)."""
    from distributed import default_client

    for _ in range(8):
        try:
            client = default_client()
        except ValueError:
            return
        if client.scheduler is None or client.scheduler.address != address:
            return
        client.close()


def _input_files(inputs: Sequence[str]) -> list[str]:
    """Every file the patterns match, sorted (one Dask partition per file, see ``_run``)."""
    from datanet.pipelines.run import match_inputs

    return match_inputs(inputs)


def _beam_filesystem_options(beam_args: Sequence[str]) -> Any:
    """A Dask worker plugin giving Beam's FileSystems the run's pipeline options on every
    worker (also on workers that join later). Beam's S3 filesystem refuses to work without
    options ("Must provide one of client or options") and the DaskRunner never passes them to
    the workers; with them, its boto3 client reads endpoint and credentials from the worker's
    environment like every other client of the store."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class BeamFileSystemOptions(WorkerPlugin):
        name = "datanet-beam-filesystem-options"

        def __init__(self, args: list[str]):
            self.args = args

        def setup(self, worker: Any) -> None:
            from apache_beam.io.filesystems import FileSystems
            from apache_beam.options.pipeline_options import PipelineOptions

            FileSystems.set_options(PipelineOptions(self.args))

    return BeamFileSystemOptions(list(beam_args))


def _register_filesystem_options(address: str, beam_args: Sequence[str]) -> None:
    """Install :func:`_beam_filesystem_options` on the cluster at ``address``."""
    from distributed import Client

    with Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False) as client:
        client.register_plugin(_beam_filesystem_options(beam_args))


def _run(store: DatanetStore, inputs: Sequence[str], address: str, beam_args: Sequence[str],
         progress: Any = None) -> Any:
    import dask

    from datanet.pipelines.run import run_datanet

    # The DaskRunner turns beam.Create into a dask bag of >= 128 elements per partition and
    # Reshuffle into a no-op, so a glob (one element) would be parsed by one task and every
    # later stage would keep that single partition. Listing the files here (the same
    # FileSystems.match the pipeline's MatchAll does, so sources and rows are unchanged) and
    # asking for one partition per file spreads parsing, and the shuffles after it, over the
    # workers.
    files = _input_files(inputs)
    _register_filesystem_options(address, beam_args)
    extra = list(beam_args)
    if not any(a.startswith(("--dask_npartitions", "--dask_partition_size")) for a in extra):
        extra.append(f"--dask_npartitions={len(files)}")
    try:
        # The DaskRunner turns GroupByKey into Bag.groupby, whose shuffle falls back to a
        # per-process on-disk store (wrong groups across worker processes) unless "tasks" is
        # chosen, by config or by a default client at graph time: pin it.
        with dask.config.set({"dataframe.shuffle.method": "tasks"}):
            return run_datanet(store, files, runner=DASK_RUNNER,
                               beam_args=dask_beam_args(address, extra), progress=progress)
    except DatanetError:
        raise
    except Exception as exc:
        # KilledWorker, lost scheduler, a worker-side exception: the driver never reached the
        # commit, so the datanet is unchanged and the same input can simply be run again.
        raise DatanetError(
            f"the Dask run failed ({type(exc).__name__}: {exc}); nothing was committed, "
            "run the same input again") from exc
    finally:
        _close_runner_clients(address)


@contextlib.contextmanager
def _local_directory(scratch: str) -> Iterator[str]:
    """The workers' spill space: the run's scratch, or a temporary local directory when the
    datanet lives on an object store (Dask spills to local disk only)."""
    from datanet.store.fs import is_remote

    if not is_remote(scratch):
        yield scratch
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="datanet-dask-") as tmp:
        yield tmp


def run_on_dask(
    store: DatanetStore,
    inputs: Sequence[str],
    *,
    beam_args: Sequence[str] = (),
    address: str | None = None,
    workers: int = 2,
    progress: Any = None,
) -> Any:
    """Run the datanet pipeline on Dask and commit one batch (``RunResult`` of ``run_datanet``,
    ``progress`` as there: workers write their counts to the shared datanet directory).

    ``address``: a running scheduler ``HOST:PORT``; without one, a local cluster of
    ``workers`` processes runs for the duration of the call.
    """
    if address:
        address = _normalise_address(address)
        n = check_cluster(address)
        log.info("running on the Dask cluster at %s (%d workers)", address, n)
        return _run(store, inputs, address, beam_args, progress)
    # the workers' scratch lives in the datanet's run scratch (locked while the run lives,
    # removed after it, swept if the process is killed), not in /tmp/dask-scratch-space
    with store.run_scratch() as (_run_id, scratch), \
            _local_directory(scratch) as local_dir, \
            local_cluster(workers, local_directory=local_dir) as local:
        log.info("running on a local Dask cluster of %d workers at %s", workers, local)
        return _run(store, inputs, local, beam_args, progress)
