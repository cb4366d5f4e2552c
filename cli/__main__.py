"""``python -m cli``: the same as the ``labour-atlas`` command."""

from cli.main import app

if __name__ == "__main__":
    app()
