"""`labour-atlas import surveys`: ODK Central, KoboToolbox and own CSV; batch validation; quarantine."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli
from etl.surveys import import_surveys
from survey.batch import validate_frame
from survey.schemas import validate_submission
from tests.payloads import NOW, aspirant


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


def work_tables(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'survey_import_%'")).scalars().all()


def links(engine, instance_id) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(
            text("SELECT duplicate_of::text, reason FROM probable_duplicate WHERE instance_id = :i"), {"i": instance_id})}


def test_a_file_of_many_chunks_is_stored_like_one(seeded, commune, tmp_path, monkeypatch):
    """Chunks are validated, checked and stored by three workers at once: the result must not show it."""
    monkeypatch.setattr("etl.surveys.CHUNK", 2)
    first = aspirant(commune, full_name="Phùng Thị Duyên", national_id="077 188 000111", collected_at=(NOW - dt.timedelta(days=3)).isoformat())
    rows = [first, aspirant(commune, full_name="Khổng Văn Lực"), aspirant(commune, sex="nam"),
            aspirant(commune, full_name="Lò Thị Xuân"), aspirant(commune, commune_code="99999"),
            # The same person as the first row, three chunks later: linked to it.
            aspirant(commune, full_name="Phùng Thị Duyên", national_id="077188000111")]
    r = import_surveys(write_csv(tmp_path / "chunks.csv", [own_row(p) for p in rows]))
    assert r.rows == 6 and dict(r.counts) == {"created": 4, "rejected": 2}
    assert {(row, fld) for row, fld, _ in r.rejected} == {(4, "sex"), (6, "commune_code")}
    assert [stored(seeded, p["instance_id"]).full_name for p in (rows[0], rows[1], rows[3], rows[5])] == [
        "Phùng Thị Duyên", "Khổng Văn Lực", "Lò Thị Xuân", "Phùng Thị Duyên"]
    assert links(seeded, rows[5]["instance_id"]) == {(first["instance_id"], "national_id")}
    assert links(seeded, first["instance_id"]) == set()
    assert work_tables(seeded) == []


def test_a_failure_in_a_later_chunk_stores_nothing_of_the_file(seeded, commune, tmp_path, monkeypatch):
    import etl.surveys

    monkeypatch.setattr("etl.surveys.CHUNK", 2)
    real, calls = etl.surveys.insert_checked, []

    def fails_on_the_third_chunk(conn, table, **kw):
        calls.append(table)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return real(conn, table, **kw)

    monkeypatch.setattr("etl.surveys.insert_checked", fails_on_the_third_chunk)
    rows = [aspirant(commune, full_name=f"Hà Văn Số {i}") for i in range(7)]
    with pytest.raises(RuntimeError, match="went away"):
        import_surveys(write_csv(tmp_path / "broken.csv", [own_row(p) for p in rows]))
    assert len(calls) == 3
    assert all(stored(seeded, p["instance_id"]) is None for p in rows)
    with seeded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submission_quarantine WHERE file_name = 'broken.csv'")).scalar() == 0
    assert work_tables(seeded) == []


def test_an_import_into_an_empty_table_is_a_bulk_load_and_a_second_one_finds_every_row(seeded_copy, commune, tmp_path,
                                                                                         monkeypatch):
    """Into an empty table (never probed chunk by chunk: the planner would take it for empty) a file goes as a bulk
    load, linked at the end; the same file again finds every row stored."""
    import etl.surveys

    with seeded_copy.begin() as conn:
        conn.execute(text("TRUNCATE probable_duplicate, survey_record, survey_record_key, submission_quarantine"))
    real, bulk = etl.surveys.is_bulk_load, []
    monkeypatch.setattr("etl.surveys.is_bulk_load", lambda conn, n: bulk.append(real(conn, n)) or bulk[-1])
    a = aspirant(commune, full_name="Mùa A Chứ", national_id="011 222 333444", collected_at=(NOW - dt.timedelta(days=1)).isoformat())
    rows = [a, aspirant(commune, full_name="Sùng Thị Mỷ"), aspirant(commune, full_name="Mùa A Chứ", national_id="011222333444")]
    r = import_surveys(write_csv(tmp_path / "first.csv", [own_row(p) for p in rows]))
    assert dict(r.counts) == {"created": 3} and bulk == [True]
    assert links(seeded_copy, rows[2]["instance_id"]) == {(a["instance_id"], "national_id")}
    again = import_surveys(write_csv(tmp_path / "first.csv", [own_row(p) for p in rows]))
    assert dict(again.counts) == {"exists": 3} and bulk == [True, False]


def record_indexes(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'survey_record' ORDER BY indexname")).scalars().all()


def test_a_bulk_load_rebuilds_the_indexes_it_left_out_and_a_failed_one_keeps_them(seeded, commune, tmp_path, monkeypatch):
    """A file bigger than the table goes in without the indexes no import reads; the table has them all afterwards."""
    import etl.surveys

    before = record_indexes(seeded)
    real, deferred = etl.surveys.defer_indexes, []
    monkeypatch.setattr("etl.surveys.defer_indexes", lambda conn: deferred.extend(real(conn)) or deferred)
    with seeded.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM survey_record")).scalar()
    rows = [aspirant(commune, full_name=f"Lầu Văn Số {i}") for i in range(present + 2)]
    r = import_surveys(write_csv(tmp_path / "bulk.csv", [own_row(p) for p in rows]))
    assert dict(r.counts) == {"created": len(rows)}
    assert len(deferred) == len(etl.surveys.DEFERRABLE_INDEXES)
    assert record_indexes(seeded) == before

    deferred.clear()
    monkeypatch.setattr("etl.surveys.CHUNK", 2)

    def fails(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("etl.surveys.insert_checked", fails)
    more = [aspirant(commune, full_name=f"Giàng Thị Số {i}") for i in range(2 * len(rows) + 2)]
    with pytest.raises(RuntimeError, match="went away"):
        import_surveys(write_csv(tmp_path / "bulk_broken.csv", [own_row(p) for p in more]))
    assert deferred and record_indexes(seeded) == before
    assert all(stored(seeded, p["instance_id"]) is None for p in more)


@pytest.mark.parametrize("locks", [True, False], ids=["indexes left out", "setting off: indexes kept"])
def test_a_bulk_load_links_probable_duplicates_once_in_the_order_of_collection(seeded, commune, tmp_path, monkeypatch,
                                                                                 environment, locks):
    """A bulk load links its records after its last chunk: to records stored before it, and within the file
    the later collected to the earlier, whichever chunk each came in; with or without its indexes."""
    import etl.surveys

    environment(LABOUR_ATLAS_BULK_LOAD_LOCKS_RECORDS=str(locks).lower())
    # People of this run only (the database is shared): their own IDs and names.
    run = "1" if locks else "2"
    earlier = aspirant(commune, full_name=f"Vàng A Sử {run}", national_id=f"088 777 66{run}001",
                       collected_at=(NOW - dt.timedelta(days=5)).isoformat())
    before = import_surveys(write_csv(tmp_path / "earlier.csv", [own_row(earlier)]))
    assert dict(before.counts) == {"created": 1}
    indexes, real, deferred = record_indexes(seeded), etl.surveys.defer_indexes, []
    # As if the file were bigger than the table: the bulk path, whatever the shared database holds.
    monkeypatch.setattr("etl.surveys.is_bulk_load", lambda conn, n: True)
    monkeypatch.setattr("etl.surveys.defer_indexes", lambda conn: deferred.extend(real(conn)) or deferred)
    monkeypatch.setattr("etl.surveys.CHUNK", 2)
    day = dt.timedelta(days=1)
    again = aspirant(commune, full_name=f"Vàng A Sử {run}", national_id=f"08877766{run}001")
    # The same name, birth year and commune, other IDs: the later collected (first in the file) links to the earlier.
    later = aspirant(commune, full_name=f"Thào Thị Dợ {run}", national_id=f"088 777 66{run}002", birth_year=1990,
                     collected_at=(NOW - day).isoformat())
    other = aspirant(commune, full_name=f"Giàng Văn Chư {run}", national_id=f"088 777 66{run}003")
    first = aspirant(commune, full_name=f"Thào Thị Dợ {run}", national_id=f"088 777 66{run}004", birth_year=1990,
                     collected_at=(NOW - 3 * day).isoformat())
    r = import_surveys(write_csv(tmp_path / "bulk_links.csv", [own_row(p) for p in (later, other, again, first)]))
    assert dict(r.counts) == {"created": 4} and bool(deferred) == locks
    assert links(seeded, again["instance_id"]) == {(earlier["instance_id"], "national_id")}
    assert links(seeded, later["instance_id"]) == {(first["instance_id"], "name_birth_year_commune")}
    assert links(seeded, first["instance_id"]) == set() and links(seeded, other["instance_id"]) == set()
    assert record_indexes(seeded) == indexes


def test_work_tables_of_a_killed_import_are_dropped_and_a_running_one_is_left(seeded, commune, tmp_path):
    """A killed import leaves personal data in its work tables: the next import removes them."""
    from etl.surveys import WORK_LOCK_CLASS

    with seeded.begin() as conn:
        conn.execute(text("CREATE UNLOGGED TABLE survey_import_deadbeef00000000_0 (full_name text)"))
        conn.execute(text("CREATE UNLOGGED TABLE survey_import_a11ve00000000000_0 (full_name text)"))
    with seeded.connect() as running:
        running.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext('a11ve00000000000'))"), {"k": WORK_LOCK_CLASS})
        import_surveys(write_csv(tmp_path / "next.csv", [own_row(aspirant(commune))]))
        assert work_tables(seeded) == ["survey_import_a11ve00000000000_0"]
        running.rollback()
    with seeded.begin() as conn:
        conn.execute(text("DROP TABLE survey_import_a11ve00000000000_0"))


def test_a_csv_row_without_gps_needs_its_reason(seeded, commune, tmp_path):
    with_reason = own_row(aspirant(commune, full_name="Lò Văn Không GPS"))
    with_reason.update(location_lat="", location_lon="", location_accuracy="", location_missing_reason="denied")
    without = own_row(aspirant(commune, full_name="Lò Văn Thiếu"))
    without.update(location_lat="", location_lon="", location_accuracy="")
    r = import_surveys(write_csv(tmp_path / "khong_gps.csv", [with_reason, without]))
    assert dict(r.counts) == {"created": 1, "rejected": 1}
    assert [(row, fld) for row, fld, _ in r.rejected] == [(3, "location")]
    assert "location_missing_reason" in r.rejected[0][2]
    with seeded.connect() as conn:
        row = conn.execute(text("SELECT assigned_commune_code, location_missing_reason, geom IS NULL FROM survey_record "
                                "WHERE instance_id = :i"), {"i": with_reason["instance_id"]}).one()
    assert tuple(row) == (commune["code"], "denied", True)


@pytest.mark.parametrize(("reason", "location"), [(None, None), ("indoors", None), ("indoors", "here"), ("lazy", None)])
def test_batch_and_single_validation_agree_on_a_missing_location(commune, reason, location):
    p = aspirant(commune, location_missing_reason=reason)
    if location is None:
        p["location"] = None
    single = {e.field for e in validate_submission(p, now=NOW)[1]}
    row = own_row(aspirant(commune))
    row["location_missing_reason"] = reason or ""
    if location is None:
        row.update(location_lat="", location_lon="", location_accuracy="")
    import pandas as pd

    typed, errors = validate_frame(pd.DataFrame([{k: str(v) for k, v in row.items()}]), now=NOW)
    assert {e.field for e in errors.get(0, [])} == single
    if location is not None:  # a reason beside a point is not kept
        assert typed["location_missing_reason"].isna().all()
