"""The ``datanet`` command line: one typer app; each module of this package adds one command
group with ``register(app)`` and shares :mod:`datanet.cli._common` (consoles, the error helper).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Annotated, Any

import typer


class _App(typer.Typer):
    """The typer app; an unexpected exception prints one ``error:`` line (exit 1) unless
    ``--debug`` asked for the traceback."""

    debug = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if _App.debug:
                raise
            from datanet.cli._common import err

            err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the "
                      "traceback)", markup=False, highlight=False)
            sys.exit(1)


app = _App(
    name="datanet",
    help="Community-owned AI datasets: validated intake, DuckDB SQL, on-chain attribution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from datanet import __version__

        sys.stdout.write(f"datanet {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines on "
                                        "stderr (results and errors still print).")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log lines (-v info, -vv debug).")] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs and full tracebacks.")
                     ] = False,
) -> None:
    """Community-owned AI datasets: validated intake, DuckDB SQL, on-chain attribution."""
    from datanet.cli._common import err, ui

    err.quiet = ui.quiet = quiet
    _App.debug = ui.debug = debug
    ui.verbose = verbose
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else None
    if level is not None and not quiet:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("datanet").setLevel(level)

#: Command modules, in help order; each has ``register(app)``.
COMMAND_MODULES = (
    "datanet.cli.core",
    "datanet.cli.anchoring",
    "datanet.cli.votes",
    "datanet.cli.validators",
    "datanet.cli.attribution",
    "datanet.cli.report",
    "datanet.cli.export",
    "datanet.cli.rewards",
    "datanet.cli.tables",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
for _noisy in ("apache_beam", "presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

__all__ = ["app", "COMMAND_MODULES"]

if __name__ == "__main__":
    app()
