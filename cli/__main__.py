"""``python -m cli``: the same as the ``labour-atlas`` command."""

from cli.main import app

app()
