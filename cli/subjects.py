"""``labour-atlas subject`` and ``purge``: one person's data exported or erased, old records anonymised; all audited."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterable
from typing import Annotated

import typer
from sqlalchemy import Connection

from api.audit import record_access
from cli.output import console, fail
from geodata.db import get_engine
from geodata.errors import InvalidInput
from geodata.scopes import Reader
from survey.subject_rights import erase_person, export_person, purge_older_than

app = typer.Typer(help="Data-subject rights: one person's records, exported or erased.", no_args_is_help=True)
PurposeOption = Annotated[str, typer.Option(help="Why (kept in the audit log), e.g. the request's reference")]
# An operator on the server: no area limit (the reads are audited).
OPERATOR = Reader()


def _national_id_from_stdin() -> str:
    value = sys.stdin.readline().strip()
    if not value:
        fail("type the person's national ID number on standard input (it is never stored in clear)")
    return value


def _audit(conn: Connection, command: str, purpose: str, ids: Iterable[str]) -> None:
    record_access(conn, actor=f"cli:{getpass.getuser()}", role=None, method="CLI", route=command, purpose=purpose, record_ids=ids)


@app.command("export")
def export(purpose: PurposeOption) -> None:
    """Print, as JSON, everything held about the person whose national ID is read from stdin."""
    national_id = _national_id_from_stdin()
    with get_engine().begin() as conn:
        found = export_person(conn, national_id, OPERATOR)
        _audit(conn, "subject export", purpose, [r["instance_id"] for r in found["records"]])
    print(json.dumps(found, ensure_ascii=False, indent=2, default=str))


@app.command("erase")
def erase(purpose: PurposeOption) -> None:
    """Anonymise the records of the person whose national ID is read from stdin (they stay as counts)."""
    national_id = _national_id_from_stdin()
    with get_engine().begin() as conn:
        done = erase_person(conn, national_id, OPERATOR)
        _audit(conn, "subject erase", purpose, done["records"])
    console.print(f"anonymised {len(done['records'])} records; blanked {len(done['quarantine'])} quarantined payloads")


def purge(
    older_than: Annotated[int, typer.Option("--older-than", help="Anonymise records collected more than this many years ago")],
) -> None:
    """Anonymise old survey records: personal fields removed, records kept as counts."""
    try:
        with get_engine().begin() as conn:
            ids = purge_older_than(conn, older_than)
            _audit(conn, "purge", f"retention: older than {older_than} years", ids)
    except InvalidInput as exc:
        fail(str(exc))
    console.print(f"anonymised {len(ids)} records collected more than {older_than} years ago")
