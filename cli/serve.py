"""``labour-atlas serve``: the app against DATABASE_URL, with a strong server secret."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.output import console, fail, warn
from geodata.logs import configure_logging
from geodata.settings import MissingSecret, get_settings, secret_problem

HostOption = Annotated[str, typer.Option(help="Address to listen on")]
PortOption = Annotated[int, typer.Option(help="Port to listen on")]


def serve_app(host: str, port: int) -> None:
    """Run the app with uvicorn until Ctrl-C (its log lines are the app's own: one per request, no URLs)."""
    import uvicorn

    from api.main import create_app

    console.print(f"Labour Atlas on [bold]http://{host}:{port}[/] (API docs at /docs); Ctrl-C stops it")
    configure_logging("server", also=("uvicorn.error",))
    uvicorn.run(create_app(), host=host, port=port, log_config=None, access_log=False)


def check_server_secret() -> None:
    """Refuse to serve without a secret; warn about a weak one accepted in demo mode."""
    settings = get_settings()
    try:
        settings.require_secret()
    except MissingSecret as exc:
        fail(f"refusing to start: {exc}")
    problem = secret_problem(settings.secret_key)
    if problem:  # the settings accepted it: demo mode
        warn(f"{problem}; accepted only because this is the demo (LABOUR_ATLAS_DEMO)")


def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Serve the app against DATABASE_URL (no demo loading); needs a strong LABOUR_ATLAS_SECRET_KEY."""
    check_server_secret()
    serve_app(host, port)
