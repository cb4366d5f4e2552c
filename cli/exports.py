"""``labour-atlas export LAYER``: a layer as a file, with a progress bar; the same writers as the API.

The command line reads as an officer of the whole country (``Viewer.operator``);
survey records need ``--purpose``, and every chunk written is in the audit log
(actor ``cli:<user>``). Filters are the layer's own, as ``--param key=value``
(repeat a key for a list)::

    labour-atlas export units --format shp --crs vn2000-tm3:42 --param structure=2025 --param parent=42
    labour-atlas export survey-records --format gpkg --purpose "báo cáo quý" --out records.gpkg
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from api.audit import audit_writer
from cli.output import console, fail, progress_bar
from etl.exports import FORMATS, check_crs, check_format, open_export
from geodata.db import get_engine
from geodata.errors import LabourAtlasError
from maps.sources import SOURCES, Viewer, layer_source


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs as the filters' values; a repeated key gives a list.

    >>> parse_params(["level=commune", "types=fraud", "types=brokerage"])
    {'level': 'commune', 'types': ['fraud', 'brokerage']}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        key = key.strip()
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


def export(
    layer: Annotated[str, typer.Argument(help=f"The layer: {', '.join(SOURCES)}")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}")] = "gpkg",
    crs: Annotated[str | None, typer.Option(help="EPSG:4326 (default), EPSG:4756, EPSG:3405, EPSG:3406 or vn2000-tm3:<province>")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The file to write (default: <layer>-<crs>.<ext> here)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A filter of the layer as key=value (repeatable)")] = None,
    purpose: Annotated[str | None, typer.Option(help="Why personal records are exported (survey-records; kept in the audit log)")] = None,
) -> None:
    """Export a layer as shp (zip), gpkg, geojson, csv or kml, in WGS 84 or VN-2000."""
    actor = f"cli:{getpass.getuser()}"
    engine = get_engine()
    try:
        source = layer_source(layer)
        fmt = check_format(format, loc=("--format",))
        target_crs = check_crs(fmt, crs, loc=("--crs",))
        audit = None
        if source.personal:
            if not purpose or len(purpose.strip()) < 3:
                fail(f"the {layer} layer holds personal data: say why with --purpose (kept in the audit log)")
            audit = audit_writer(engine, actor=actor, role="officer", method="CLI", route=f"labour-atlas export {layer}",
                                 purpose=purpose.strip()[:500])
        filters = source.parse_filters(parse_params(param or []))
        with engine.connect() as conn:
            opened = open_export(conn, source, filters, Viewer.operator(actor, audit), fmt, target_crs)
            conn.commit()
            path = out or Path(opened.filename)
            part = path.with_name(path.name + ".part")  # the file appears whole or not at all
            try:
                with progress_bar(f"{layer} -> {path.name}") as update, open(part, "wb") as f:
                    update(0, opened.rows.count)
                    for block in opened.write(conn, update):
                        f.write(block)
                part.replace(path)
            finally:
                part.unlink(missing_ok=True)
    except ValidationError as exc:
        problems = "; ".join(f"--param {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"bad filter for the {layer} layer: {problems}")
    except LabourAtlasError as exc:
        where = f"{exc.loc[-1]}: " if getattr(exc, "loc", None) else ""
        fail(f"{where}{exc}")
    console.print(f"{opened.rows.count} rows of {layer} written to {path} ({opened.target.crs.label}, {fmt.name})")
