"""What several benchmarks do the same way: a private PostgreSQL cluster in a temporary folder, and a server started
and waited for.

The file name starts with ``_``: ``run_all.py`` runs every ``bench/*.py`` except such helpers. A benchmark puts the
repository on ``sys.path`` before importing this (it imports ``geodata``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from geodata import db
from geodata.embedded import EmbeddedPostgres


def private_cluster(prefix: str = "labour-atlas-bench-") -> tuple[Path, EmbeddedPostgres]:
    """A new temporary folder and a private cluster (not started, not durable: a benchmark's data is thrown away) in it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    # As root the cluster runs as 'postgres', which must traverse this folder.
    folder.chmod(0o755)
    return folder, EmbeddedPostgres(folder / "pgdata", durable=False)


def remove_cluster(folder: Path, pg: EmbeddedPostgres) -> None:
    """Close the app's connections, stop the private cluster and delete its folder: a benchmark leaves nothing behind."""
    db.close_database()
    pg.stop()
    shutil.rmtree(folder, ignore_errors=True)


def serve(cmd: list[str], env: dict[str, str], port: int, log: Path, probe: str = "/health",
          ready: Callable[[int], bool] = lambda status: status < 500, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own session (stop it with ``os.killpg``), output to ``log``; return once ``probe`` answers
    a status ``ready`` accepts. Raises, with the log's end, if the server exits or is not ready within two minutes."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if ready(httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code):
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"server {' '.join(cmd)} did not start:\n{log.read_text(errors='replace')[-3000:]}")
