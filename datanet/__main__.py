"""``python -m datanet`` runs the command line."""

from datanet.cli import app

app()
