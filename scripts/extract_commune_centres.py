"""Extract commune centre points from the ``vietnamadminunits`` package.

The bundled file ``geodata/reference/commune_centres.csv`` was produced by this
module from vietnamadminunits 1.0.4 (MIT). It is kept here so that the extraction
can be repeated when that package publishes a new dataset::

    pip install vietnamadminunits==1.0.4
    python scripts/extract_commune_centres.py geodata/reference/commune_centres.csv
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from importlib import resources
from pathlib import Path

QUERIES = {
    # The legacy table lists a few wards more than once (one row per alias);
    # the coordinates are the same, so one row per code is enough.
    "pre2025": """SELECT wardCode, MIN(wardLon), MIN(wardLat) FROM admin_units_legacy
                  WHERE wardCode IS NOT NULL AND wardLat IS NOT NULL GROUP BY wardCode""",
    "2025": """SELECT wardCode, MIN(wardLon), MIN(wardLat) FROM admin_units
               WHERE wardCode IS NOT NULL AND wardLat IS NOT NULL GROUP BY wardCode""",
}


def extract_commune_centres(out_path: Path) -> int:
    """Write ``structure,code,lon,lat`` rows for every commune with a centre.

    Returns the number of rows written.
    """
    db = resources.files("vietnamadminunits") / "data" / "dataset.db"
    con = sqlite3.connect(str(db))
    n = 0
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["structure", "code", "lon", "lat"])
        for structure, sql in QUERIES.items():
            for code, lon, lat in con.execute(sql):
                w.writerow([structure, str(code).zfill(5), f"{lon:.6f}", f"{lat:.6f}"])
                n += 1
    return n


if __name__ == "__main__":
    print(extract_commune_centres(Path(sys.argv[1])))
