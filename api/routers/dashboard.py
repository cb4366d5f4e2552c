"""The dashboard's headline numbers for the signed-in user's area, by role, with links to the pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends
from fastapi.routing import APIRouter
from sqlalchemy import text

from api.access import ALL_ROLES, Allow, reader_for
from api.deps import AuthUser, DbConn
from api.schemas import Dashboard
from geodata.roles import Role
from geodata.scopes import scope_condition
from maps.coverage import Released, coverage_by_unit, parse_period
from maps.hotspots import HotspotRequest, TooLittleData, hotspots
from maps.incidents import IncidentFilter
from maps.recruiters import recruiter_activity
from maps.suppression import suppression_k
from survey.records import READER_CONDITION

router = APIRouter(prefix="/api/v1", tags=["dashboard"])
SIGNED_IN = Allow(*ALL_ROLES, limit="own_or_area")
SignedIn = Annotated[AuthUser, Depends(SIGNED_IN)]

LINKS = {
    "survey": ("/survey", "Phiếu khảo sát", "Survey form"),
    "coverage": ("/maps/coverage", "Bản đồ hoàn thành chỉ tiêu", "Target coverage map"),
    "hotspots": ("/maps/hotspots", "Bản đồ điểm nóng", "Hot-spot map"),
    "recruiters": ("/maps/recruiters", "Doanh nghiệp và địa bàn", "Recruiters map"),
    "docs": ("/docs", "Tài liệu API", "API documentation"),
}
ROLE_LINKS = {
    Role.surveyor: ("survey",), Role.officer: ("survey", "coverage", "hotspots", "recruiters"),
    Role.leader: ("coverage", "hotspots", "recruiters"), Role.planner: ("coverage", "hotspots", "recruiters", "docs"),
    Role.police_analyst: ("hotspots", "recruiters"), Role.admin: ("docs",),
}


def number(key: str, vi: str, en: str, value: Any, note: str | None = None) -> dict:
    return {"key": key, "label": {"vi": vi, "en": en}, "value": value, "note": note}


def _coverage_numbers(conn, user: AuthUser, year: int) -> list[dict]:
    reader = reader_for(user, "area")
    k = suppression_k(user.role)
    period = parse_period(year)
    layer = coverage_by_unit(conn, structure="2025", level="province", period=period, reader=reader,
                             released=Released(user.role, reader) if k is not None else None, with_geometry=False)
    departures = [r.row.values["actual"] for r in layer.rows]
    hidden = any(d is None for d in departures)
    if layer.source == "releases":
        upto = layer.released_periods[-1] if layer.released_periods else None
        note = (f"released months to {upto}" if upto else "no month of the year released yet") + \
            ("; some provinces' counts are hidden (small counts)" if hidden else "")
    else:
        note = None
    targets = [r.target.lower for r in layer.rows if r.target]
    status = [r.status for r in layer.rows if r.status]
    out = [number("departures", f"Xuất cảnh năm {year}", f"Departures in {year}", None if hidden else sum(departures), note),
           number("target", f"Chỉ tiêu năm {year}", f"Target for {year}", round(sum(targets)) if targets else None,
                  None if targets else "no target set")]
    for s, vi, en in (("on_track", "Đúng tiến độ", "On track"), ("at_risk", "Có nguy cơ chậm", "At risk"),
                      ("off_track", "Chậm tiến độ", "Off track")):
        out.append(number(s, f"Tỉnh {vi.lower()}", f"Provinces {en.lower()}", status.count(s)))
    return out


def _incident_numbers(conn, user: AuthUser, today: dt.date) -> list[dict]:
    reader = reader_for(user, "area")
    start = today - dt.timedelta(days=365)
    n = conn.execute(text(f"""SELECT count(*) FROM incident i WHERE i.occurred_on BETWEEN :a AND :b
                              AND (CAST(:scope_user_id AS uuid) IS NULL OR {scope_condition("i.commune_code", "i.structure")})"""),
                     {"a": start, "b": today, **reader.params()}).scalar()
    out = [number("incidents", "Vụ việc trong 12 tháng", "Incidents in 12 months", n)]
    try:
        layer = hotspots(conn, HotspotRequest("2025", "commune", None, IncidentFilter(start, today), 499), reader)
        hot = sum(r.klass.startswith("hot") for r in layer.rows)
        out.append(number("hot_spots", "Xã là điểm nóng", "Communes that are hot spots", hot))
    except TooLittleData as exc:
        out.append(number("hot_spots", "Xã là điểm nóng", "Communes that are hot spots", None, str(exc)))
    activity = recruiter_activity(conn, structure="2025", start=start, end=today, reader=reader)
    out.append(number("unregistered_clusters", "Xã có nhiều đối tượng môi giới không phép",
                      "Communes with several unregistered actors", len(activity.unregistered_clusters)))
    return out


@router.get("/dashboard", response_model=Dashboard)
def dashboard(conn: DbConn, user: SignedIn) -> dict:
    """Headline numbers of your area for your role, and the pages you can open."""
    today = dt.date.today()
    numbers: list[dict] = []
    if user.role in (Role.surveyor, Role.officer):
        reader = reader_for(user, SIGNED_IN.limit)
        records, open_rejected = conn.execute(text(f"""
            SELECT (SELECT count(*) FROM survey_record r WHERE r.collected_at >= make_timestamptz(:y, 1, 1, 0, 0, 0, 'Asia/Ho_Chi_Minh')
                    AND {READER_CONDITION}),
                   (SELECT count(*) FROM submission_quarantine q WHERE q.status = 'open'
                    AND (CAST(:own_sender AS text) IS NULL OR q.submitted_by = :own_sender)
                    AND (CAST(:scope_user_id AS uuid) IS NULL OR EXISTS (
                         SELECT 1 FROM admin_unit a WHERE a.code = q.commune_code AND {scope_condition("a.code", "a.structure")})))"""),
            {"y": today.year, **reader.params()}).one()
        mine = user.role is Role.surveyor
        numbers += [number("records", "Phiếu đã gửi năm nay" if mine else "Phiếu năm nay", "Records sent this year" if mine
                           else "Records this year", records),
                    number("rejected_open", "Phiếu bị từ chối chưa sửa", "Rejected forms to correct", open_rejected)]
    if user.role in (Role.officer, Role.leader, Role.planner):
        numbers += _coverage_numbers(conn, user, today.year)
    if user.role in (Role.officer, Role.police_analyst):
        numbers += _incident_numbers(conn, user, today)
    if user.role is Role.admin:
        users, reads = conn.execute(text("""SELECT (SELECT count(*) FROM app_user WHERE NOT disabled),
                                                   (SELECT count(*) FROM audit_log WHERE at > now() - interval '1 day')""")).one()
        numbers += [number("users", "Tài khoản đang dùng", "Active accounts", users),
                    number("personal_reads", "Lượt đọc dữ liệu cá nhân 24 giờ qua", "Personal-data reads in 24 hours", reads)]
    area = conn.execute(text("""SELECT s.structure, s.unit_code AS code, a.name FROM user_scope s
                                JOIN admin_unit a ON a.structure = s.structure AND a.code = s.unit_code
                                WHERE s.user_id = :id ORDER BY s.structure, s.unit_code"""), {"id": user.id}).mappings().all()
    links = [{"href": LINKS[k][0], "label": {"vi": LINKS[k][1], "en": LINKS[k][2]}} for k in ROLE_LINKS[user.role]]
    return {"username": user.username, "role": user.role.value, "area": [dict(a) for a in area], "date": today,
            "suppressed_below": suppression_k(user.role), "numbers": numbers, "links": links}
