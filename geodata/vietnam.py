"""Facts about Viet Nam every package uses: its extent and its time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

VIETNAM_BBOX = (101.5, 6.0, 118.0, 24.0)
"""(min lon, min lat, max lon, max lat) in WGS 84: the mainland, the Hoàng Sa and
Trường Sa islands and the sea around them. A point or polygon outside it is
not in Viet Nam (or its coordinates are swapped, or its CRS is wrong)."""

TIMEZONE_NAME = "Asia/Ho_Chi_Minh"
VIETNAM_TZ = ZoneInfo(TIMEZONE_NAME)
"""Viet Nam time (UTC+7, no daylight saving): times without a zone are read in it, days and years are counted in it."""


def in_vietnam(lon: float, lat: float) -> bool:
    """Whether a WGS 84 point lies in :data:`VIETNAM_BBOX`.

    >>> in_vietnam(105.85, 21.03), in_vietnam(21.03, 105.85)
    (True, False)
    """
    minx, miny, maxx, maxy = VIETNAM_BBOX
    return minx <= lon <= maxx and miny <= lat <= maxy
