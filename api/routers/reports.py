"""The periodic progress report of a unit: ``GET /api/v1/reports/{unit_code}?period=2025-H1&format=xlsx|html``.

The report is assembled by :func:`maps.reports.unit_report` from the layers'
own functions (so its totals are theirs), with the caller's role and area:
officers get live counts, leaders and planners numbers from frozen releases
only, police analysts incident counts and recruiter flags. Rendered by
:mod:`etl.report_files`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from api.access import Allow, reader_for
from api.deps import AuthUser, DbConn
from etl.report_files import FORMATS, render_report, report_filename
from geodata.roles import Role
from geodata.structures import Structure
from maps.reports import unit_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

REPORT_READERS = Allow(Role.officer, Role.leader, Role.planner, Role.police_analyst, limit="area")
ReportReader = Annotated[AuthUser, Depends(REPORT_READERS)]


@router.get("/{unit_code}", response_class=Response,
            responses={200: {"content": {FORMATS["xlsx"]: {}, "text/html": {}},
                             "description": "The report as an XLSX workbook or a printable HTML page"}})
def unit_report_file(
    conn: DbConn,
    user: ReportReader,
    unit_code: Annotated[str, Path(pattern=r"^[0-9]{2,5}$", description="The unit's GSO code")],
    period: Annotated[str, Query(description="A half-year (2025-H1, 2025-H2) or a year (2025)")],
    structure: Structure = Structure.v2025,
    format: Literal["xlsx", "html"] = "html",
) -> Response:
    """The progress report of a unit of your area for a half-year or a year.

    Targets and actuals by sub-unit, departures by market and by recruiter's
    licence, returnees by job status, priority groups, recruiter-licence
    flags, incident counts and a coverage map; each section states its
    method, period, source (live, or the releases read) and caveats. 404 for
    an unknown unit, 403 for one outside your area, 422 for a period that is
    not a half-year or a year.
    """
    report = unit_report(conn, unit_code=unit_code, period=period, role=user.role, structure=structure.value,
                         reader=reader_for(user, REPORT_READERS.limit))
    body = render_report(report, format)
    return Response(body, media_type=FORMATS[format],
                    headers={"Content-Disposition": f'{"attachment" if format == "xlsx" else "inline"}; '
                                                    f'filename="{report_filename(report, format)}"',
                             "Cache-Control": "no-store"})
