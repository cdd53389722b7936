"""Operator input to ``datanet run``: runner names and Beam options, checked before a run.

Beam ignores options it does not know (``--no-anchr`` would be dropped and the batch anchored)
and resolves some runners by downloading a job server or binary at run time. So: only options
that Beam's own ``PipelineOptions`` classes define pass through (a typo is an error with a
"did you mean"), runner names are checked against a fixed list, and a runner that would
download its job server is refused unless the operator names one.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datanet.errors import OptionError

__all__ = [
    "RUNNERS",
    "RunArgs",
    "beam_option_names",
    "canonical_runner",
    "check_beam_args",
    "check_runner",
    "split_run_args",
]

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"

#: Accepted runner names (case-insensitive, the ``Runner`` suffix optional, as Beam resolves
#: them) -> the name passed on. ``DirectRunner`` is Beam's in-process FnApiRunner here (Beam's
#: own DirectRunner first downloads Prism).
RUNNERS: dict[str, str] = {
    "direct": "DirectRunner",
    "fnapi": "FnApiRunner",
    "dask": DASK_RUNNER,
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "portable": "PortableRunner",
    "prism": "PrismRunner",
    "dataflow": "DataflowRunner",
}

#: Runners that fetch a job server / binary at run time unless one is given: runner -> the
#: options of which one must be present (Beam's FlinkRunner / SparkRunner download the job
#: server jar, PrismRunner the prism binary, PortableRunner needs an endpoint).
_NEEDS_SERVER: dict[str, tuple[str, ...]] = {
    "FlinkRunner": ("--job_endpoint", "--flink_job_server_jar"),
    "SparkRunner": ("--job_endpoint", "--spark_job_server_jar"),
    "PortableRunner": ("--job_endpoint",),
    "PrismRunner": ("--prism_location",),
}
#: Dataflow needs a project, region and staging location; Beam fails late without them.
_NEEDS_ALL: dict[str, tuple[str, ...]] = {
    "DataflowRunner": ("--project", "--region", "--temp_location"),
}


@dataclass(frozen=True)
class RunArgs:
    """``datanet run``'s trailing arguments split into input patterns and Beam options."""

    inputs: tuple[str, ...]
    beam_args: tuple[str, ...]


def _valid_runner_names() -> list[str]:
    return ["DirectRunner", "dask", *(v for k, v in RUNNERS.items()
                                      if k not in ("direct", "dask"))]


def canonical_runner(name: str) -> str:
    """The name to pass on for an accepted runner name; raises :class:`OptionError` otherwise.

    A fully qualified ``module.Class`` name passes unchanged (Beam imports it).
    """
    if "." in name.strip("."):
        return name
    key = name.strip().lower()
    key = key[: -len("runner")] if key.endswith("runner") and key != "runner" else key
    if key in RUNNERS:
        return RUNNERS[key]
    valid = _valid_runner_names()
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5) or difflib.get_close_matches(
        key, list(RUNNERS), n=1, cutoff=0.5)
    hint = f"did you mean {RUNNERS.get(close[0], close[0])}? " if close else ""
    raise OptionError(f"--runner {name!r} is not a runner; {hint}valid: {', '.join(valid)} "
                      "(or a fully qualified PipelineRunner class)")


def check_runner(name: str, beam_args: Sequence[str] = ()) -> str:
    """:func:`canonical_runner`, refusing runners whose job server / binary is not given."""
    runner = canonical_runner(name)
    given = {a.split("=", 1)[0] for a in beam_args}
    any_of = _NEEDS_SERVER.get(runner)
    if any_of and not given & set(any_of):
        raise OptionError(
            f"--runner {runner} needs its job server: give "
            f"{' or '.join(o + '=…' for o in any_of)} (datanet "
            "never downloads a job server or runner binary at run time)")
    all_of = _NEEDS_ALL.get(runner, ())
    missing = [o for o in all_of if o not in given]
    if missing:
        raise OptionError(f"--runner {runner} needs {', '.join(f'{o}=…' for o in missing)}")
    return runner


@functools.cache
def beam_option_names() -> dict[str, bool]:
    """Every option Beam's ``PipelineOptions`` classes define -> whether it takes a value.

    Includes the DaskRunner's options when dask is installed (they live in its module).
    """
    from apache_beam.options import pipeline_options as po

    try:
        import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers DaskOptions)
    except ImportError:  # pragma: no cover - dask is a dependency
        pass

    def subclasses(cls: type) -> Iterable[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    parser = po._BeamArgumentParser(allow_abbrev=False, conflict_handler="resolve")
    for cls in {*subclasses(po.PipelineOptions)}:
        cls._add_argparse_args(parser)
    return {opt: action.nargs != 0
            for opt, action in parser._option_string_actions.items() if opt.startswith("--")}


def _unknown(flag: str, known: Iterable[str], where: str) -> OptionError:
    close = difflib.get_close_matches(flag, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return OptionError(f"{where}{flag}: unknown option{hint} (only options Beam's own "
                       "PipelineOptions define are passed to Beam, as --flag=value)")


def _check_flag(flag: str, names: dict[str, bool], also_known: Iterable[str],
                where: str) -> None:
    if flag == "--runner":
        raise OptionError(f"{where}--runner among the Beam options would bypass the runner "
                          "checks; give it as `datanet run --runner NAME` or [pipeline].runner")
    if flag not in names:
        raise _unknown(flag, [*also_known, *names], where)


def check_beam_args(args: Sequence[str], *, also_known: Iterable[str] = (),
                    where: str = "") -> tuple[str, ...]:
    """``args`` if every one is a Beam pipeline option; else :class:`OptionError` naming the
    first unknown one with the closest known option (Beam's or one of ``also_known``).
    ``where`` prefixes the message (e.g. the spec key the options came from)."""
    if not args:  # Beam's option classes are imported only when there is one to check
        return ()
    names = beam_option_names()
    for a in args:
        _check_flag(a.split("=", 1)[0], names, also_known, where)
    return tuple(args)


def split_run_args(tokens: Sequence[str], *, also_known: Iterable[str] = ()) -> RunArgs:
    """Split ``datanet run``'s trailing tokens into inputs and checked Beam options.

    A Beam option that takes a value may be given as ``--flag=value`` or ``--flag value``.
    Beam's option classes are imported only when a token is an option.
    """
    names = beam_option_names() if any(t.startswith("--") for t in tokens) else {}
    inputs: list[str] = []
    beam: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            inputs.append(tok)
        else:
            flag = tok.split("=", 1)[0]
            _check_flag(flag, names, also_known, "")
            if "=" not in tok and names[flag] and i + 1 < len(tokens) \
                    and not tokens[i + 1].startswith("--"):
                tok = f"{tok}={tokens[i + 1]}"
                i += 1
            beam.append(tok)
        i += 1
    return RunArgs(tuple(inputs), tuple(beam))
