"""The ``datanet`` command line: one typer app; each module of this package adds one command
group with ``register(app)`` and shares :mod:`datanet.cli._common` (consoles, the error helper).
"""

from __future__ import annotations

import importlib
import logging

import typer


class _QuietOptionalGcp(logging.Filter):
    """Beam logs 'apitools not found' on the root logger at import; we do not use GCP."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_QuietOptionalGcp())

app = typer.Typer(
    name="datanet",
    help="Community-owned AI datasets: validated intake, DuckDB SQL, on-chain attribution.",
    no_args_is_help=True,
    add_completion=False,
)

#: Command modules, in help order; each has ``register(app)``.
COMMAND_MODULES = (
    "datanet.cli.core",
    "datanet.cli.anchoring",
    "datanet.cli.votes",
    "datanet.cli.rewards",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
for _noisy in ("apache_beam", "presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

__all__ = ["app", "COMMAND_MODULES"]

if __name__ == "__main__":
    app()
