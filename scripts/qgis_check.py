"""Headless QGIS reads a running Labour Atlas through /ogc, as the README's QGIS steps say (a check run by hand).

    apt-get install python3-qgis qgis-providers          # Debian/Ubuntu; QGIS 3.22 or later
    labour-atlas demo --port 8798 &                      # or any server, with an accounts file like the demo's
    /usr/bin/python3 scripts/qgis_check.py http://127.0.0.1:8798 .labour-atlas/demo-accounts.txt

It runs QGIS's own OGC API Features provider (the one behind the Data Source
Manager) with Basic authentication from QGIS's authentication manager, for
the demo's roles: the collections a role may open open with no parameter (all
QGIS sends), the ones it may not do not, bbox and attribute requests come back
filtered, and Vietnamese names arrive intact. It uses the system's Python
(PyQGIS), not the app's virtual environment, prints PASS or FAIL per check
and exits 1 if any failed.
"""

import os
import sys
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["QGIS_AUTH_DB_DIR_PATH"] = tempfile.mkdtemp()  # a private, temporary authentication database

from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsExpression, QgsFeatureRequest, QgsRectangle, QgsVectorLayer

FAILED: list[str] = []
QgsApplication.setPrefixPath("/usr", True)
APP = QgsApplication([], False)
APP.initQgis()


def check(name: str, passed: bool, detail: object = "") -> None:
    print("PASS" if passed else "FAIL", name, detail)
    if not passed:
        FAILED.append(name)


def accounts_of(path: str) -> dict[str, str]:
    """username -> password from the demo's accounts file (tab-separated, two comment lines)."""
    with open(path, encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().splitlines() if line and not line.startswith("#")]
    return {row[0]: row[2] for row in rows}


def basic_auth(manager, username: str, password: str) -> str:
    """A Basic configuration in QGIS's authentication manager (what step 1 of the README makes); its id."""
    cfg = QgsAuthMethodConfig("Basic")
    cfg.setName(username)
    cfg.setConfig("username", username)
    cfg.setConfig("password", password)
    stored = manager.storeAuthenticationConfig(cfg)
    assert stored[0] if isinstance(stored, tuple) else stored, "QGIS did not store the authentication configuration"
    return cfg.id()


def main(base: str, accounts_file: str) -> int:
    accounts = accounts_of(accounts_file)
    manager = QgsApplication.authManager()
    manager.setMasterPassword("master password of this check only", True)

    def layer(typename: str, user: str | None = None, password: str | None = None) -> QgsVectorLayer:
        auth = f" authcfg={basic_auth(manager, user, password or accounts[user])}" if user else ""
        return QgsVectorLayer(f"url='{base}/ogc' typename='{typename}'{auth}", typename, "OAPIF")

    units = layer("units")
    check("units open without signing in", units.isValid())  # (QgsVectorLayer.error() crashes QGIS 3.22 here: not read)
    if units.isValid():
        every = list(units.getFeatures())
        check("all units read, page after page", len(every) > 100, f"{len(every)} units, {units.crs().authid()}")
        names = [f["name"] or "" for f in every]
        check("Vietnamese names intact", any("Đình" in n or "ĩ" in n for n in names), names[:3])
        boxed = list(units.getFeatures(QgsFeatureRequest().setFilterRect(QgsRectangle(105.5, 18.0, 106.0, 18.5))))
        check("a bbox request returns the units in it", 0 < len(boxed) < len(every), f"{len(boxed)} in the box")
    for user, collection, allowed in (
            ("demo-officer", "survey-records", True), ("demo-police", "survey-records", False),
            ("demo-police", "incidents", True), ("demo-leader", "coverage", True),
            ("demo-leader", "incident-counts", True), ("demo-planner", "recruiter-areas", True)):
        lyr = layer(collection, user)
        fields = {f.name() for f in lyr.fields()} if lyr.isValid() else set()
        rows = list(lyr.getFeatures()) if lyr.isValid() else []
        check(f"{user} {'opens' if allowed else 'cannot open'} {collection}", lyr.isValid() == allowed,
              f"{len(rows)} features" if lyr.isValid() else "not valid")
        if lyr.isValid() and collection == "survey-records":
            check("an officer reads personal fields", "full_name" in fields)
        if lyr.isValid() and collection == "incidents":
            check("a police analyst reads no personal field", not {"full_name", "phone", "national_id"} & fields)
            some = list(lyr.getFeatures(QgsFeatureRequest(QgsExpression("\"type\" = 'illegal_brokerage'"))))
            check("an attribute request returns only its rows", all(f["type"] == "illegal_brokerage" for f in some),
                  f"{len(some)} of {len(rows)}")
    wrong = layer("survey-records", "demo-officer", "not the password")
    check("a wrong password opens nothing", not wrong.isValid())
    print("ALL PASS" if not FAILED else f"FAILED: {', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    code = main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    os._exit(code)  # without exitQgis() and Python's teardown: PyQGIS 3.22 crashes in them after a run like this
