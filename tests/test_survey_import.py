"""`labour-atlas import surveys`: ODK Central, KoboToolbox and own CSV; batch validation; quarantine."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app as cli
from etl.surveys import import_surveys
from survey.batch import validate_frame
from survey.schemas import validate_submission
from tests.test_submissions_api import aspirant


def own_row(p: dict) -> dict:
    """A payload as a row of Labour Atlas's own CSV."""
    row = {k: v for k, v in p.items() if k != "location"}
    row["location_lat"], row["location_lon"] = p["location"]["lat"], p["location"]["lon"]
    row["location_accuracy"] = p["location"].get("accuracy", "")
    for k, v in row.items():
        if isinstance(v, list):
            row[k] = " ".join(v)
        elif isinstance(v, bool):
            row[k] = "true" if v else "false"
    return row


def write_csv(path, rows, bom=False):
    headers = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.DictWriter(f, headers)
        w.writeheader()
        w.writerows(rows)
    return path


def stored(engine, instance_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT full_name, assigned_commune_code, source FROM survey_record WHERE instance_id = :i"), {"i": instance_id}).first()


def test_own_csv_with_bom_valid_and_invalid_rows(seeded, commune, tmp_path):
    good = [aspirant(commune, full_name=n) for n in ("Đỗ Thị Ngọc Ánh", "Vàng A Dính", "Nguyễn Hữu Phước")]
    bad = [aspirant(commune, birth_year=1901), aspirant(commune, sex="nam"), aspirant(commune, commune_code="99999")]
    path = write_csv(tmp_path / "khao_sat.csv", [own_row(p) for p in [good[0], bad[0], good[1], bad[1], good[2], bad[2]]], bom=True)
    r = import_surveys(path)
    assert r.rows == 6 and dict(r.counts) == {"created": 3, "rejected": 3}
    assert sorted({row for row, _, _ in r.rejected}) == [3, 5, 7]  # header is row 1
    assert {(row, fld) for row, fld, _ in r.rejected} == {(3, "birth_year"), (5, "sex"), (7, "commune_code")}
    for p in good:
        name, assigned, source = stored(seeded, p["instance_id"])
        assert name == p["full_name"] and assigned == commune["code"] and source == "csv:khao_sat.csv"
    with seeded.connect() as conn:
        q = conn.execute(text("SELECT row_number, payload_text, reasons FROM submission_quarantine WHERE file_name = 'khao_sat.csv' ORDER BY row_number")).all()
    assert [x.row_number for x in q] == [3, 5, 7]
    assert json.loads(q[0].payload_text)["instance_id"] == bad[0]["instance_id"]
    assert all(bad[0]["national_id"] not in x.payload_text and "hmac:" in x.payload_text for x in q)
    # The same file again creates nothing.
    again = import_surveys(path)
    assert dict(again.counts) == {"exists": 3, "rejected": 3}


def test_odk_central_export(seeded, commune, tmp_path):
    ps = [aspirant(commune, full_name="Lương Thị Thu"), aspirant(commune, kind="returnee", return_country="KR",
          return_date="2024-05-01", contract_outcome="completed", job_status="self_employed", markets_wanted=None, sector=None)]
    rows = []
    for p in ps:
        rows.append({
            "SubmissionDate": "2026-11-21T01:00:00.000Z", "start": p["collected_at"], "end": p["collected_at"],
            "kind": p["kind"], "surveyor": p["surveyor"], "consent": "yes", "commune_code": p["commune_code"],
            "location-Latitude": p["location"]["lat"], "location-Longitude": p["location"]["lon"],
            "location-Altitude": "12", "location-Accuracy": "4.5",
            "person-full_name": p["full_name"], "person-national_id": p["national_id"], "person-birth_year": p["birth_year"],
            "person-sex": p["sex"], "aspirant-markets_wanted": " ".join(p["markets_wanted"] or []),
            "aspirant-sector": p["sector"] or "", "returnee-return_country": p.get("return_country", ""),
            "returnee-return_date": p.get("return_date", ""), "returnee-contract_outcome": p.get("contract_outcome", ""),
            "returnee-job_status": p.get("job_status", ""),
            "meta-instanceID": f"uuid:{p['instance_id']}", "KEY": f"uuid:{p['instance_id']}", "SubmitterName": "khaosat01",
        })
    r = import_surveys(write_csv(tmp_path / "odk.csv", rows))
    assert dict(r.counts) == {"created": 2}, r.rejected
    assert stored(seeded, ps[0]["instance_id"]).full_name == "Lương Thị Thu"


def test_kobo_export_with_combined_geopoint(seeded, commune, tmp_path):
    p = aspirant(commune, full_name="Hà Thị Mỷ")
    row = {
        "start": p["collected_at"], "kind": p["kind"], "surveyor": p["surveyor"], "consent": "yes",
        "commune_code": p["commune_code"], "location": f"{p['location']['lat']} {p['location']['lon']} 10 5",
        "group_person/full_name": p["full_name"], "group_person/birth_year": p["birth_year"], "group_person/sex": p["sex"],
        "group_aspirant/markets_wanted": "JP DE", "group_aspirant/markets_wanted/JP": "1", "group_aspirant/markets_wanted/DE": "1",
        "group_aspirant/sector": "welding", "_uuid": p["instance_id"], "_submission_time": "2026-11-21T01:00:00",
    }
    r = import_surveys(write_csv(tmp_path / "kobo.csv", [row], bom=True))
    assert dict(r.counts) == {"created": 1}, r.rejected
    assert stored(seeded, p["instance_id"]).full_name == "Hà Thị Mỷ"


def test_the_same_record_from_api_and_csv_is_one_record(client, seeded, commune, tmp_path):
    p = aspirant(commune)
    assert client.post("/api/v1/submissions", json=p).status_code == 201
    r = import_surveys(write_csv(tmp_path / "same.csv", [own_row(p)]))
    assert dict(r.counts) == {"exists": 1}
    changed = own_row(dict(p, birth_year=1985))
    r = import_surveys(write_csv(tmp_path / "changed.csv", [changed]))
    assert dict(r.counts) == {"conflict": 1}
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submission_quarantine WHERE file_name = 'changed.csv'")).scalar() == 1


def test_no_consent_rows_keep_nothing_personal(seeded, commune, tmp_path):
    p = aspirant(commune, consent=False, full_name="Ẩn Danh Tuyệt Đối", national_id="001122334455")
    r = import_surveys(write_csv(tmp_path / "noconsent.csv", [own_row(p)]))
    assert dict(r.counts) == {"rejected": 1}
    with seeded.connect() as conn:
        text_ = conn.execute(text("SELECT payload_text FROM submission_quarantine WHERE file_name = 'noconsent.csv'")).scalar()
    assert "Ẩn Danh" not in text_ and "001122334455" not in text_ and str(p["location"]["lat"]) not in text_


def test_unreadable_file_is_refused_with_its_name(seeded, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("instance_id,kind,họ tên\n".encode("cp1258", "replace") + b"\xff\xfe\n")
    result = CliRunner().invoke(cli, ["import", "surveys", str(path)])
    assert result.exit_code == 1 and "latin1.csv" in result.output and "Nothing was imported" in result.output


def test_cli_prints_counts_and_rejected_rows(seeded, commune, tmp_path):
    path = write_csv(tmp_path / "cli.csv", [own_row(aspirant(commune)), own_row(aspirant(commune, sector="pilot"))])
    result = CliRunner().invoke(cli, ["import", "surveys", str(path)])
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "row 3, field sector" in result.output


BAD_CHANGES = [
    {"birth_year": 1900}, {"sex": "x"}, {"markets_wanted": ["JP", "ZZ"]}, {"consent": False},
    {"collected_at": "2099-01-01T00:00:00+07:00"}, {"collected_at": "2021-01-01T00:00:00+07:00"},
    {"location": {"lat": 105.8, "lon": 21.0}}, {"location": {"lat": 48.8, "lon": 2.3}}, {"instance_id": "abc"},
    {"kind": "departure"}, {"sector": None}, {"commune_code": "123"}, {"birth_year": "abc"},
]


@pytest.mark.parametrize("change", BAD_CHANGES, ids=lambda c: ",".join(c))
def test_batch_and_single_validation_flag_the_same_fields(commune, change):
    """pandera (batch) and pydantic (single) come from one definition and agree."""
    p = aspirant(commune, **change)
    _, single = validate_submission(p)
    row = {k: (None if v is None else str(v)) for k, v in own_row(p).items()}
    import pandas as pd

    _, batch = validate_frame(pd.DataFrame([row]))
    assert {e.field for e in single} == {e.field for e in batch.get(0, [])}
