"""A private PostgreSQL + PostGIS cluster in a local folder.

Used by ``labour-atlas demo`` when no ``DATABASE_URL`` is set, and by the tests.
It runs the machine's own server binaries (``initdb``, ``pg_ctl``), listens
only on 127.0.0.1 on a free port, and requires a password kept in the folder.
PostgreSQL refuses to run as root, so when we are root the cluster belongs to
the ``postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "labour_atlas"
DATABASE = "labour_atlas"


class EmbeddedDatabaseError(RuntimeError):
    """The private cluster could not be created or started; the message says why."""


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries (initdb, pg_ctl).

    They are not on PATH on Debian: ask ``pg_config --bindir`` first, then
    look in the Debian layout ``/usr/lib/postgresql/<major>/bin``.
    """
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    candidates.extend(debian)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise EmbeddedDatabaseError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. "
        "`apt-get install postgresql postgresql-15-postgis-3`, or set PG_BINDIR."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    """A private cluster under ``folder`` (created on first start, reused after).

    Example::

        pg = EmbeddedPostgres(Path(".labour-atlas/pgdata"))
        url = pg.start()          # postgresql+psycopg://labour_atlas:...@127.0.0.1:PORT/labour_atlas
        ...
        pg.stop()
    """

    folder: Path
    # Tests may trade crash safety for speed; a demo keeps its data safe.
    durable: bool = True
    # The port to listen on: a free one at the first start, the same one at
    # every later start of this object (clients keep their URL across a restart).
    port: int | None = None

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).absolute()
        self.bindir = find_bindir()
        self.run_as = "postgres" if os.geteuid() == 0 else None

    # -- helpers -------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.password"

    def _cmd(self, *args: str | os.PathLike) -> list[str]:
        cmd = [str(a) for a in args]
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def _run(self, *args: str | os.PathLike) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True)
        if proc.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{Path(str(args[0])).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def _check_postgis(self) -> None:
        pg_config = self.bindir / "pg_config"
        sharedir = None
        if pg_config.exists():
            sharedir = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True).stdout.strip()
        else:
            sharedir = f"/usr/share/postgresql/{self.bindir.parent.name}"
        if not Path(sharedir, "extension", "postgis.control").exists():
            raise EmbeddedDatabaseError(
                f"PostGIS is not installed for the PostgreSQL server in {self.bindir}. "
                f"Install it, e.g. `apt-get install postgresql-{self.bindir.parent.name}-postgis-3`."
            )

    @property
    def initialised(self) -> bool:
        return (self.folder / "PG_VERSION").exists()

    def _running_port(self) -> int | None:
        """The port of a server already running on this folder, if any."""
        pidfile = self.folder / "postmaster.pid"
        if not pidfile.exists():
            return None
        status = subprocess.run(self._cmd(self.bindir / "pg_ctl", "status", "-D", self.folder), capture_output=True)
        if status.returncode != 0:
            return None
        lines = pidfile.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 else None

    # -- lifecycle -----------------------------------------------------------
    def init(self) -> None:
        """Create the cluster folder with ``initdb`` (UTF-8, password auth)."""
        self._check_postgis()
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password)
        self.password_file.chmod(0o600)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.folder.parent / f".{self.folder.name}.initpw"
        pwfile.write_text(password + "\n")
        try:
            if self.run_as:
                owner = pwd.getpwnam(self.run_as)
                os.chown(self.folder, owner.pw_uid, owner.pw_gid)
                os.chown(pwfile, owner.pw_uid, owner.pw_gid)
                probe = subprocess.run(["runuser", "-u", self.run_as, "--", "test", "-w", str(self.folder)])
                if probe.returncode != 0:
                    raise EmbeddedDatabaseError(
                        f"The '{self.run_as}' user cannot reach {self.folder}: a parent folder is private. "
                        "Set LABOUR_ATLAS_DATA_DIR to a folder it can reach (e.g. /var/lib/labour-atlas)."
                    )
            self._run(
                self.bindir / "initdb", "-D", self.folder, "-U", SUPERUSER, "--pwfile", pwfile,
                "--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> str:
        """Start the server (creating the cluster the first time); return its URL."""
        if not self.initialised:
            self.init()
        port = self._running_port()
        if port is None:
            port = self.port or free_port()
            log = self.folder / "server.log"
            # 256 MB of shared buffers (the default, 128 MB, is for tiny
            # machines): survey tables and their indexes stay in memory.
            options = f"-p {port} -h 127.0.0.1 -k '' -c shared_buffers=256MB"
            if not self.durable:
                options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            self._run(self.bindir / "pg_ctl", "start", "-D", self.folder, "-l", log, "-w", "-t", "60", "-o", options)
        self._wait_ready(port)
        self._ensure_database(port)
        self.port = port
        return self.url(DATABASE, port)

    def url(self, database: str, port: int | None = None) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port or self.port}/{database}"

    def _wait_ready(self, port: int) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres", port).replace("+psycopg", ""), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _ensure_database(self, port: int) -> None:
        self.create_database(DATABASE, port)

    def create_database(self, name: str, port: int | None = None) -> str:
        """Create database ``name`` if missing; return its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres", port).replace("+psycopg", ""), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name, port)

    def stop(self) -> None:
        """Stop the server (fast shutdown); the folder is kept for the next run."""
        if self.initialised and self._running_port() is not None:
            self._run(self.bindir / "pg_ctl", "stop", "-D", self.folder, "-m", "fast", "-w")


def cluster_folder(data_dir: Path) -> Path:
    """Where the demo's private cluster lives: ``data_dir/pgdata``.

    As root the cluster belongs to ``postgres``, which must be able to reach
    the folder; when a parent folder is private (e.g. under /root), the
    cluster goes to /var/lib/labour-atlas instead, keyed by ``data_dir``.
    """
    folder = Path(data_dir).absolute() / "pgdata"
    if os.geteuid() != 0:
        return folder
    reachable = all(os.stat(p).st_mode & 0o001 for p in folder.parents if p.exists())
    if reachable:
        return folder
    import hashlib

    key = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    return Path("/var/lib/labour-atlas") / f"pgdata-{key}"
