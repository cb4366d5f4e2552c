"""Data-subject rights: export everything about one person, erase it, purge old records."""

from __future__ import annotations

import json

from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli
from tests.payloads import aspirant

AGGREGATE_SQL = """
SELECT declared_commune_code, assigned_commune_code, kind, date_trunc('month', collected_at) AS month, count(*)
FROM survey_record GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


def test_export_then_erase_keeps_aggregates(client, seeded, commune):
    person = "079300123456"
    mine = [aspirant(commune, national_id=person, full_name="Trịnh Thị Xoá"), aspirant(commune, national_id=person, full_name="Trịnh Thị Xoá", kind="returnee",
            return_country="JP", return_date="2025-03-01", contract_outcome="completed", job_status="employed", markets_wanted=None, sector=None)]
    other = aspirant(commune, national_id="079300999999", full_name="Người Khác")
    for p in [*mine, other]:
        assert client.post("/api/v1/submissions", json=p).status_code == 201
    bad = aspirant(commune, national_id=person, birth_year=1900)
    assert client.post("/api/v1/submissions", json=bad).status_code == 422

    runner = CliRunner()
    out = runner.invoke(cli, ["subject", "export", "--purpose", "yêu cầu số 12"], input=person + "\n")
    assert out.exit_code == 0, out.output
    exported = json.loads(out.stdout)
    assert {r["instance_id"] for r in exported["records"]} == {p["instance_id"] for p in mine}
    assert all(r["full_name"] == "Trịnh Thị Xoá" for r in exported["records"])
    assert [json.loads(q["payload_text"])["instance_id"] for q in exported["quarantine"]] == [bad["instance_id"]]

    with seeded.connect() as conn:
        before = conn.execute(text(AGGREGATE_SQL)).all()
    out = runner.invoke(cli, ["subject", "erase", "--purpose", "yêu cầu số 12"], input=person + "\n")
    assert out.exit_code == 0 and "anonymised 2 records" in out.output
    with seeded.connect() as conn:
        assert conn.execute(text(AGGREGATE_SQL)).all() == before
        rows = conn.execute(
            text("SELECT full_name, id_hash, birth_year, sex, geom, answers, anonymised_at FROM survey_record WHERE instance_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": [p["instance_id"] for p in mine]},
        ).all()
        assert all(r.full_name is None and r.id_hash is None and r.birth_year is None and r.geom is None and r.anonymised_at for r in rows)
        assert all(not ({"phone", "ethnicity", "household_status"} & set(r.answers)) for r in rows)
        everywhere = conn.execute(text("SELECT string_agg(row_to_json(r)::text, '') FROM survey_record r")).scalar()
        everywhere += conn.execute(text("SELECT string_agg(payload_text, '') FROM submission_quarantine")).scalar()
        assert "Trịnh Thị Xoá" not in everywhere
        assert conn.execute(text("SELECT full_name FROM survey_record WHERE instance_id = :i"), {"i": other["instance_id"]}).scalar() == "Người Khác"
        audit = conn.execute(text("SELECT route, purpose, record_ids FROM audit_log WHERE route LIKE 'subject %' ORDER BY id")).all()
    assert [(a.route, a.purpose) for a in audit[-2:]] == [("subject export", "yêu cầu số 12"), ("subject erase", "yêu cầu số 12")]
    assert set(audit[-1].record_ids) == {p["instance_id"] for p in mine}


def test_purge_anonymises_only_old_records(client, seeded, commune):
    old = aspirant(commune, collected_at="2025-01-15T09:00:00+07:00", full_name="Cũ Lâu Rồi")
    new = aspirant(commune, full_name="Mới Gần Đây")
    for p in (old, new):
        assert client.post("/api/v1/submissions", json=p).status_code == 201
    result = CliRunner().invoke(cli, ["purge", "--older-than", "1"])
    assert result.exit_code == 0, result.output
    with seeded.connect() as conn:
        names = dict(conn.execute(text("SELECT instance_id::text, full_name FROM survey_record WHERE instance_id = ANY(CAST(:ids AS uuid[]))"),
                                  {"ids": [old["instance_id"], new["instance_id"]]}).all())
    assert names == {old["instance_id"]: None, new["instance_id"]: "Mới Gần Đây"}
    assert CliRunner().invoke(cli, ["purge", "--older-than", "0"]).exit_code == 1


def test_officers_export_and_erase_through_the_api_inside_their_area(client, seeded, commune, accounts):
    import secrets

    nid = f"0421{secrets.randbelow(10**8):08d}"
    here = aspirant(commune, national_id=nid, full_name="Lưu Thị Quyền")
    there = aspirant(commune["other"] | {"code": commune["other"]["code"]}, national_id=nid, full_name="Lưu Thị Quyền")
    for p in (here, there):
        assert client.post("/api/v1/submissions", json=p).status_code == 201
    year = here["collected_at"][:4]
    counts = {"year": year, "structure": "2025", "level": "commune"}
    before = client.get("/api/v1/aggregates/survey-counts", params=counts).json()["units"]
    officer = accounts.user("officer", (commune["code"],))  # the first commune only
    headers = accounts.headers("officer", (commune["code"],)) | {"X-Purpose": "yeu-cau-cua-nguoi-dan"}
    # The ID goes in the body, so that it stays out of URLs and access logs.
    exported = client.post("/api/v1/subjects/export", json={"national_id": nid}, headers=headers)
    assert exported.status_code == 200
    assert [r["instance_id"] for r in exported.json()["records"]] == [here["instance_id"]]  # not the other commune's
    assert client.post("/api/v1/subjects/export", json={"national_id": "12ab"}, headers=headers).status_code == 422
    assert client.post("/api/v1/subjects/erase", json={"national_id": nid, "confirm": False}, headers=headers).status_code == 422
    erased = client.post("/api/v1/subjects/erase", json={"national_id": nid, "confirm": True}, headers=headers)
    assert erased.status_code == 200 and erased.json()["erased_records"] == [here["instance_id"]]
    with seeded.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT instance_id::text, full_name FROM survey_record WHERE instance_id IN (CAST(:a AS uuid), CAST(:b AS uuid))"),
            {"a": here["instance_id"], "b": there["instance_id"]}).all())
        audit = conn.execute(text("SELECT route, purpose, record_ids FROM audit_log WHERE actor = :a ORDER BY id"),
                             {"a": officer.name}).all()
    assert rows == {here["instance_id"]: None, there["instance_id"]: "Lưu Thị Quyền"}
    assert [(a.route, a.record_ids) for a in audit][-2:] == [
        ("/api/v1/subjects/export", [here["instance_id"]]), ("/api/v1/subjects/erase", [here["instance_id"]])]
    # The record stays as an anonymous count.
    assert client.get("/api/v1/aggregates/survey-counts", params=counts).json()["units"] == before
