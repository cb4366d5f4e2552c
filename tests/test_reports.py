"""Periodic reports: their totals are the layers' totals, leaders get only released numbers, files keep Vietnamese.

The records, incidents and recruiters are put in Ninh Bình (2025 province 37),
which no other test writes into, in months of 2021 that no other test
releases, so every number below is what this module stored:

- February: 12 departures to Japan through a licensed recruiter (6 poor, 6
  near-poor households; 5 of an ethnic minority; 3 demobilised soldiers) in
  commune A; 8 to Korea through a recruiter whose licence was revoked, in
  commune B; 2 to Taiwan and 3 to Germany through a licence not in the
  register, in commune A.
- March: in commune A, 7 departures to Japan (poor, ethnic minority), 3 to
  Taiwan through the revoked licence, 3 to Germany through the unknown one
  (surveyed in April); 9 incidents with 2 persons affected each.
- February and April: in commune A, returnees (5 and 9 employed, 3
  self-employed and 2 unemployed each month) and 6 aspirants.

Each month's small counts add up to at least k, and the survey counts of a
month with records have every kind, so that the suppression can leave the totals shown (a month
whose hidden cells sum to less than k would hide its total, and then the
report hides the whole breakdown).
- A yearly target of 100 departures for the province.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from geodata.roles import Role
from geodata.scopes import Reader
from geodata.vietnam import VIETNAM_TZ
from maps.reports import HIDDEN, unit_report

PROVINCE = "37"
PROVINCE_NAME = "Ninh Bình"
HALF = "2021-H1"
LICENSED = ("R37-01/LĐTBXH-GPHĐ", "Công ty Cổ phần Cung ứng Nhân lực Hoa Lư")
REVOKED = ("R37-02/LĐTBXH-GPHĐ", "Công ty TNHH Hợp tác Lao động Trường Sơn")
UNKNOWN_LICENCE = "R37-99/KHÔNG-RÕ"

DEPARTURES_SQL = """
INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                           structure, declared_commune_code, assigned_commune_code, consent, payload_hash, departure_date,
                           market, recruiter_licence, answers)
SELECT :province, gen_random_uuid(), 'labour_survey', 'test', 'departure', :at, 'Người khảo sát thử', 'test (synthetic)',
       '2025', :code, :code, true, md5(random()::text), :day, :market, :licence,
       jsonb_strip_nulls(jsonb_build_object(
           'household_status', CASE WHEN g <= :poor THEN 'poor' WHEN g <= :poor + :near_poor THEN 'near_poor' END,
           'ethnicity', CASE WHEN g <= :minority THEN '03' ELSE '01' END,
           'demobilised_soldier', g <= :demobilised))
FROM generate_series(1, :n) AS g
"""

RETURNEES_SQL = """
INSERT INTO survey_record (province_code, instance_id, form_id, form_version, kind, collected_at, surveyor, source,
                           structure, declared_commune_code, assigned_commune_code, consent, payload_hash, answers)
SELECT :province, gen_random_uuid(), 'labour_survey', 'test', 'returnee', :at, 'Người khảo sát thử', 'test (synthetic)',
       '2025', :code, :code, true, md5(random()::text), jsonb_build_object('job_status', CAST(:job AS text))
FROM generate_series(1, :n)
"""


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10), VIETNAM_TZ)


@pytest.fixture(scope="module")
def world(seeded_url):
    from geodata.db import use_database

    engine = use_database(seeded_url)
    with engine.begin() as conn:
        a, b = conn.execute(text("SELECT code FROM admin_unit WHERE structure = '2025' AND parent_code = :p ORDER BY code LIMIT 2"),
                            {"p": PROVINCE}).scalars().all()
        conn.execute(text("""INSERT INTO recruiter (licence_number, name, status, valid_from, valid_to, source) VALUES
                             (:l1, :n1, 'active', '2020-01-01', NULL, 'test (synthetic)'),
                             (:l2, :n2, 'revoked', '2019-01-01', NULL, 'test (synthetic)')"""),
                     {"l1": LICENSED[0], "n1": LICENSED[1], "l2": REVOKED[0], "n2": REVOKED[1]})

        def departures(code, day, n, market, licence, poor=0, near_poor=0, minority=0, demobilised=0, collected=None):
            conn.execute(text(DEPARTURES_SQL), {"province": PROVINCE, "code": code, "day": day, "at": at(collected or day), "n": n,
                                                "market": market, "licence": licence, "poor": poor, "near_poor": near_poor,
                                                "minority": minority, "demobilised": demobilised})

        departures(a, dt.date(2021, 2, 8), 12, "JP", LICENSED[0], poor=6, near_poor=6, minority=5, demobilised=3)
        departures(b, dt.date(2021, 2, 9), 8, "KR", REVOKED[0])
        departures(a, dt.date(2021, 2, 10), 2, "TW", UNKNOWN_LICENCE)
        departures(a, dt.date(2021, 2, 11), 3, "DE", UNKNOWN_LICENCE)
        april = dt.date(2021, 4, 20)
        departures(a, dt.date(2021, 3, 15), 7, "JP", LICENSED[0], poor=7, minority=7, collected=april)
        departures(a, dt.date(2021, 3, 16), 3, "TW", REVOKED[0], collected=april)
        departures(a, dt.date(2021, 3, 17), 3, "DE", UNKNOWN_LICENCE, collected=april)
        for day, employed in ((dt.date(2021, 2, 20), 5), (april, 9)):
            for job, n in (("employed", employed), ("unemployed", 2), ("self_employed", 3)):
                conn.execute(text(RETURNEES_SQL), {"province": PROVINCE, "code": a, "at": at(day), "job": job, "n": n})
            conn.execute(text(RETURNEES_SQL.replace("'returnee'", "'aspirant'")), {"province": PROVINCE, "code": a, "at": at(day),
                                                                                   "job": None, "n": 6})
        conn.execute(text("""INSERT INTO incident (province_code, incident_id, type, occurred_on, structure, commune_code,
                                                   persons_affected, status, source)
                             SELECT :p, 'reports-' || g, 'illegal_brokerage', '2021-03-09', '2025', :a, 2, 'reported', 'test (synthetic)'
                             FROM generate_series(1, 9) AS g"""), {"p": PROVINCE, "a": a})
        conn.execute(text("""INSERT INTO recruitment_event (province_code, event_key, licence_number, actor_name, occurred_on, kind,
                                                            structure, commune_code, source) VALUES
                             (:p, 'reports-1', :l2, :n2, '2021-02-01', 'seminar', '2025', :a, 'test (synthetic)'),
                             (:p, 'reports-2', NULL, 'Văn phòng Môi giới Đồng Xuân', '2021-02-02', 'counselling', '2025', :a,
                              'test (synthetic)')"""), {"p": PROVINCE, "l2": REVOKED[0], "n2": REVOKED[1], "a": a})
        conn.execute(text("""INSERT INTO target (structure, unit_code, year, indicator, kind, value, source)
                             VALUES ('2025', :p, 2021, 'departures', 'absolute', 100, 'test (synthetic)')"""), {"p": PROVINCE})
    return {"a": a, "b": b, "engine": engine}


def report_of(world, role: str, period: str = HALF):
    with world["engine"].begin() as conn:
        return unit_report(conn, unit_code=PROVINCE, period=period, role=Role(role), reader=Reader())


def row_of(section, code: str) -> list:
    (row,) = [r for r in section.rows if r[0] == code]
    return row


def by_name(section) -> dict[str, object]:
    return {r[1]: r[2] for r in section.rows}


def layer_value(response, code: str, key: str):
    assert response.status_code == 200, response.text
    (f,) = [f for f in response.json()["features"] if f["properties"]["code"] == code]
    return f["properties"][key]


def test_an_officers_report_totals_are_the_layers_totals(client, accounts, world):
    report = report_of(world, "officer")
    headers = accounts.headers("officer", (PROVINCE,))
    coverage = report.section("coverage")
    params = {"structure": "2025", "half": HALF, "geometry": "false"}
    province = client.get("/api/v1/layers/coverage", params={**params, "level": "province"}, headers=headers)
    communes = client.get("/api/v1/layers/coverage", params={**params, "level": "commune", "parent": PROVINCE}, headers=headers)
    assert row_of(coverage, PROVINCE)[3] == layer_value(province, PROVINCE, "actual") == 38
    assert row_of(coverage, PROVINCE)[2] == layer_value(province, PROVINCE, "target_lower") == round(100 * 181 / 365, 2)
    for code, n in ((world["a"], 30), (world["b"], 8)):
        assert row_of(coverage, code)[3] == layer_value(communes, code, "actual") == n
    assert coverage.source.startswith("live")

    incidents = report.section("incidents")
    dates = {"from": "2021-01-01", "to": "2021-06-30", "geometry": "false"}
    layer = client.get("/api/v1/layers/incident-counts", params={**dates, "level": "province"}, headers=headers)
    assert row_of(incidents, PROVINCE)[2:] == [layer_value(layer, PROVINCE, "incidents"),
                                               layer_value(layer, PROVINCE, "persons_affected")] == [9, 18]
    layer = client.get("/api/v1/layers/incident-counts", params={**dates, "level": "commune", "parent": PROVINCE}, headers=headers)
    assert row_of(incidents, world["a"])[2] == layer_value(layer, world["a"], "incidents") == 9

    markets = by_name(report.section("markets"))
    assert (markets["Nhật Bản (Japan)"], markets["Hàn Quốc (South Korea)"], markets["Đài Loan (Taiwan)"],
            markets["Đức (Germany)"]) == (19, 8, 5, 6)
    assert markets["Tổng (total)"] == 38  # the breakdown adds up to the coverage actual
    licences = by_name(report.section("licences"))
    assert list(licences.values()) == [19, 11, 8, 38]
    recruiters = {r[0]: r for r in report.section("recruiters").rows}
    assert recruiters[REVOKED[0]][1:] == [REVOKED[1], "có (yes)", 11, 11]
    assert recruiters[UNKNOWN_LICENCE][2:] == ["không (no)", 8, 0]
    returnees = by_name(report.section("returnees"))
    assert returnees["Có việc làm (Employed)"] == 14 and returnees["Chưa có việc làm (Unemployed)"] == 4
    assert returnees["Tổng (total)"] == 24
    priority = by_name(report.section("priority"))
    assert list(priority.values()) == [13, 6, 12, 3]
    flags = {r[1]: r for r in report.section("licence_flags").rows}
    assert flags[REVOKED[1]][3:] == [1, 1, 0] and flags["Văn phòng Môi giới Đồng Xuân"][3:] == [1, 0, 1]


def test_a_leaders_report_holds_released_numbers_only_and_they_are_the_layers(client, accounts, world):
    leader = report_of(world, "leader")
    officer = report_of(world, "officer")
    headers = accounts.headers("leader", (PROVINCE,))
    coverage = leader.section("coverage")
    province = client.get("/api/v1/layers/coverage", params={"structure": "2025", "half": HALF, "level": "province",
                                                             "geometry": "false"}, headers=headers)
    assert row_of(coverage, PROVINCE)[3] == layer_value(province, PROVINCE, "actual") == 38
    assert coverage.source.startswith("releases") and all(str(r["id"]) in coverage.source for r in province.json()["releases"])
    # Below the province nothing is released: every commune's actual is hidden (they have no target: listed in one row).
    assert all(r[3] is HIDDEN for r in coverage.rows if r[0] != PROVINCE)
    with world["engine"].connect() as conn:
        communes = conn.execute(text("SELECT count(*) FROM admin_unit WHERE structure = '2025' AND parent_code = :p"),
                                {"p": PROVINCE}).scalar()
    assert len(coverage.rows) == 2 and coverage.rows[1][1].startswith(f"{communes} đơn vị")

    monthly = [client.get("/api/v1/layers/incident-counts", params={"period": f"2021-0{m}", "level": "province",
                                                                    "geometry": "false"}, headers=headers) for m in range(1, 7)]
    assert row_of(leader.section("incidents"), PROVINCE)[2] == sum(layer_value(r, PROVINCE, "incidents") for r in monthly) == 9
    assert "release ids" in leader.section("incidents").source

    # No count the releases hide: Taiwan and Germany (2, 3 a month), Korea (none in March), demobilised soldiers (3).
    markets, truth = by_name(leader.section("markets")), by_name(officer.section("markets"))
    assert markets["Nhật Bản (Japan)"] == 19 and markets["Tổng (total)"] == 38
    hidden_row = [r for r in leader.section("markets").rows if r[2] is HIDDEN]
    assert len(hidden_row) == 1 and {"Đài Loan (Taiwan)", "Đức (Germany)", "Hàn Quốc (South Korea)"} <= set(hidden_row[0][1].split("; "))
    assert by_name(leader.section("licences"))["Giấy phép còn hiệu lực (licence valid on the departure day)"] == 19
    assert by_name(leader.section("returnees"))["Tổng (total)"] == 24
    assert by_name(leader.section("priority")) == {"Hộ nghèo (poor household)": 13, "Người dân tộc thiểu số (ethnic minority)": 12,
                                                   next(r[1] for r in leader.section("priority").rows if r[2] is HIDDEN): HIDDEN}
    k = leader.k
    for key in ("markets", "licences", "returnees", "priority", "incidents", "coverage"):
        section = leader.section(key)
        assert "releases" in section.source, key
        for row in section.rows:
            for v in row[2:4]:
                assert v is HIDDEN or not isinstance(v, int) or v >= k, (key, row)
    for name, n in markets.items():
        if n is not HIDDEN and name in truth:
            assert n == truth[name]
    assert not leader.section("recruiters").available


def test_police_get_incidents_and_flags_and_nothing_from_survey_records(world):
    report = report_of(world, "police_analyst")
    available = {s.key for s in report.sections if s.available}
    assert available == {"licence_flags", "incidents"}
    assert row_of(report.section("incidents"), PROVINCE)[2] == 9
    assert report.map is None


def test_the_files_keep_vietnamese_and_write_hidden_counts_as_words(client, accounts, world):
    officer = accounts.headers("officer", (PROVINCE,))
    r = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": HALF, "format": "xlsx"}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    cells = {str(c.value) for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None}
    assert {PROVINCE_NAME, REVOKED[1], "Văn phòng Môi giới Đồng Xuân", "Nhật Bản (Japan)"} <= cells
    assert any(PROVINCE_NAME in c and HALF in c for c in cells)
    assert book["Tổng quan"]._images, "the coverage map is in the workbook"

    leader = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": HALF, "format": "xlsx"},
                        headers=accounts.headers("leader", (PROVINCE,)))
    book = load_workbook(io.BytesIO(leader.content))
    numbers = {c.value for name in ("2 markets", "3 licences") for row in book[name].iter_rows() for c in row
               if isinstance(c.value, (int, float))}
    assert numbers == {19, 38}  # Japan, valid licences, the total: Korea's 8, Taiwan's 5, Germany's 6... are words
    assert "ẩn (hidden)" in {c.value for row in book["2 markets"].iter_rows() for c in row}

    page = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": HALF, "format": "html"},
                      headers=accounts.headers("leader", (PROVINCE,)))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    body = page.text
    assert PROVINCE_NAME in body and "Nhật Bản (Japan)" in body and "@page { size: A4" in body
    assert 'src="data:image/png;base64,' in body
    assert "ẩn (hidden)" in body and "release ids" in body
    assert REVOKED[1] not in body.split('id="licence_flags"')[0]  # per-recruiter departures are for officers only


def test_bad_period_unit_or_area_get_clear_answers(client, accounts):
    officer = accounts.headers("officer", (PROVINCE,))
    quarter = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": "2021-Q1"}, headers=officer)
    assert quarter.status_code == 422 and "half-year or a year" in quarter.text
    assert quarter.json()["detail"][0]["loc"] == ["query", "period"]
    nonsense = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": "last year"}, headers=officer)
    assert nonsense.status_code == 422 and "not a period" in nonsense.text
    missing = client.get("/api/v1/reports/99", params={"period": HALF}, headers=officer)
    assert missing.status_code == 404 and "no unit 99" in missing.text
    outside = client.get("/api/v1/reports/42", params={"period": HALF}, headers=officer)
    assert outside.status_code == 403 and "outside your area" in outside.text
    surveyor = client.get(f"/api/v1/reports/{PROVINCE}", params={"period": HALF}, headers=accounts.headers("surveyor", (PROVINCE,)))
    assert surveyor.status_code == 403


def test_the_command_writes_a_report_and_names_a_bad_option(world, tmp_path):
    out = tmp_path / "báo cáo.xlsx"
    result = CliRunner().invoke(cli_app, ["report", "--unit", PROVINCE, "--period", HALF, "--out", str(out), "--as-role", "leader"])
    assert result.exit_code == 0, result.output
    assert out.exists() and PROVINCE_NAME in result.output
    assert load_workbook(out)["Tổng quan"]["A1"].value.endswith(f"{PROVINCE_NAME} (progress report)")
    html = tmp_path / "r.html"
    assert CliRunner().invoke(cli_app, ["report", "--unit", PROVINCE, "--period", "2021", "--format", "html", "--out",
                                        str(html)]).exit_code == 0
    assert PROVINCE_NAME in html.read_text(encoding="utf-8")
    bad = CliRunner().invoke(cli_app, ["report", "--unit", PROVINCE, "--period", "2021-13"])
    assert bad.exit_code == 1 and "--period" in bad.output and "not a period" in bad.output
    bad = CliRunner().invoke(cli_app, ["report", "--unit", "99", "--period", HALF])
    assert bad.exit_code == 1 and "no unit 99" in bad.output
    bad = CliRunner().invoke(cli_app, ["report", "--unit", PROVINCE, "--period", HALF, "--as-role", "surveyor"])
    assert bad.exit_code == 1 and "reports are" in bad.output



@pytest.mark.parametrize("survey_counts_hide_it", [True, False])
def test_a_breakdown_is_shown_only_where_the_other_release_of_its_total_shows_it(survey_counts_hide_it):
    """Returnees by job: their total is released by the survey counts too; hidden there, the whole breakdown is hidden."""
    from types import SimpleNamespace

    from maps.aggregates import AggregateRow
    from maps.period_sums import SummedView
    from maps.periods import Period
    from maps.report_counts import RETURNEES_BY_JOB
    from maps.reports import ReportBuilder
    from maps.survey_counts import SURVEY_COUNTS

    def summed(values: dict, hidden: set, dataset: str):
        row = AggregateRow(PROVINCE, PROVINCE_NAME, "province", None, "2025", HALF, values, frozenset(hidden), "official")
        return SummedView(dataset, "2025", HALF, "releases", 5, {PROVINCE: row}, [HALF], [], dt.date(2021, 6, 30)), row

    jobs = {"employed": 14, "self_employed": None, "unemployed": None, "studying": None, "not_stated": None, "returnees": 24}
    views = {RETURNEES_BY_JOB.name: summed(jobs, {k for k, v in jobs.items() if v is None}, RETURNEES_BY_JOB.name),
             SURVEY_COUNTS.name: summed({"returnee": None if survey_counts_hide_it else 24},
                                        {"returnee"} if survey_counts_hide_it else set(), SURVEY_COUNTS.name)}
    builder = object.__new__(ReportBuilder)
    builder.released, builder.role, builder.k, builder.label = True, Role.leader, 5, HALF
    builder.now, builder.period = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), Period.parse(HALF)
    builder.unit = SimpleNamespace(code=PROVINCE, name=PROVINCE_NAME, level="province", parent_code=None)
    builder.summed = lambda dataset: views[dataset.name]
    shown = by_name(builder.returnees())
    if survey_counts_hide_it:
        assert set(shown.values()) == {HIDDEN}
    else:
        assert shown["Có việc làm (Employed)"] == 14 and shown["Tổng (total)"] == 24
