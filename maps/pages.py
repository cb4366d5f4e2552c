"""The map pages (folium): coverage, hot spots, recruiters, with Vietnamese legends and tooltips (English on request).

folium fetches Leaflet, jQuery, Bootstrap and its plugins from public CDNs
by default, so its pages are blank on an intranet without internet. The maps
here load only the app's own copy of Leaflet (``/static/leaflet``), use
nothing else, and have no base map by default: the layers show on a plain
background (a base map can be asked for with ``basemap``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Literal

import folium
from branca.element import MacroElement, Template

Lang = Literal["vi", "en"]
LOCAL_JS = [("leaflet", "/static/leaflet/leaflet.js")]
LOCAL_CSS = [("leaflet_css", "/static/leaflet/leaflet.css")]
CENTRE = (16.0, 106.5)
OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

COVERAGE_COLOURS = ["#d73027", "#fc8d59", "#fee08b", "#1a9850", "#91cf60", "#4575b4", "#313695", "#542788", "#2d004b"]
FIXED_COLOURS = {"0–50 %": "#d73027", "50–80 %": "#fc8d59", "80–100 %": "#fee08b", "≥ 100 %": "#1a9850"}
NO_DATA_COLOUR = "#d9d9d9"
HOTSPOT_COLOURS = {"hot_99": "#b2182b", "hot_95": "#ef8a62", "hot_90": "#fddbc7", "not_significant": "#f7f7f7",
                   "cold_90": "#d1e5f0", "cold_95": "#67a9cf", "cold_99": "#2166ac"}
WORDS = {
    "vi": {"coverage": "Tỷ lệ hoàn thành chỉ tiêu", "hotspots": "Điểm nóng vụ việc", "recruiters": "Doanh nghiệp và địa bàn hoạt động",
           "no data": "Chưa có chỉ tiêu", "approximate": "Ranh giới xã ước tính (nét đứt)", "target": "Chỉ tiêu",
           "actual": "Đã xuất cảnh", "ratio": "Tỷ lệ", "status": "Tiến độ", "hidden": "ẩn (số nhỏ)",
           "hot_99": "Điểm nóng 99 %", "hot_95": "Điểm nóng 95 %", "hot_90": "Điểm nóng 90 %", "not_significant": "Không có ý nghĩa thống kê",
           "cold_90": "Điểm lạnh 90 %", "cold_95": "Điểm lạnh 95 %", "cold_99": "Điểm lạnh 99 %", "incidents": "Số vụ việc",
           "class": "Phân loại", "head_offices": "Trụ sở doanh nghiệp", "areas": "Địa bàn hoạt động", "events": "Số sự kiện",
           "flags": "Cảnh báo", "registered": "Có trong danh sách cấp phép", "unregistered": "Không có trong danh sách",
           "name": "Tên", "units": "Đơn vị"},
    "en": {"coverage": "Share of the target reached", "hotspots": "Incident hot spots", "recruiters": "Recruiters and their activity areas",
           "no data": "No target", "approximate": "Approximate commune boundary (dashed)", "target": "Target",
           "actual": "Departures", "ratio": "Ratio", "status": "Progress", "hidden": "hidden (small count)",
           "hot_99": "Hot spot 99 %", "hot_95": "Hot spot 95 %", "hot_90": "Hot spot 90 %", "not_significant": "Not significant",
           "cold_90": "Cold spot 90 %", "cold_95": "Cold spot 95 %", "cold_99": "Cold spot 99 %", "incidents": "Incidents",
           "class": "Class", "head_offices": "Head offices", "areas": "Activity areas", "events": "Events", "flags": "Flags",
           "registered": "In the licence register", "unregistered": "Not in the register", "name": "Name", "units": "Units"},
}


class Legend(MacroElement):
    """A legend drawn as a Leaflet control (no external script)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: 'bottomright'});
            legend.onAdd = function () {
                var div = L.DomUtil.create('div', 'la-legend');
                div.setAttribute('role', 'region');
                div.setAttribute('aria-label', {{ this.title|tojson }});
                div.style.cssText = 'background:#fff;padding:6px 8px;border-radius:4px;font:13px/1.5 system-ui,sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)';
                div.innerHTML = {{ this.body|tojson }};
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(self, title: str, entries: Sequence[tuple[str, str, bool]], note: str | None = None) -> None:
        super().__init__()
        self._name = "Legend"
        self.title = title
        rows = "".join(
            f'<div><span style="display:inline-block;width:18px;height:11px;margin-right:5px;vertical-align:middle;'
            f'background:{colour};border:1px {"dashed" if dashed else "solid"} #555"></span>{html.escape(label)}</div>'
            for label, colour, dashed in entries)
        self.body = f"<b>{html.escape(title)}</b>{rows}" + (f'<div style="color:#555;max-width:16em">{html.escape(note)}</div>' if note else "")


def new_map(basemap: bool = False) -> folium.Map:
    """A folium map that loads only the app's own Leaflet; a base map only when asked (it needs internet)."""
    m = folium.Map(location=CENTRE, zoom_start=6, tiles=None, prefer_canvas=True, control_scale=True)
    m.default_js = LOCAL_JS
    m.default_css = LOCAL_CSS
    if basemap:
        folium.TileLayer(OSM, attr="© OpenStreetMap contributors", name="OpenStreetMap").add_to(m)
    return m


def _style(colour: str, approximate: bool) -> dict[str, Any]:
    return {"fillColor": colour, "color": "#b35806" if approximate else "#444", "weight": 1,
            "dashArray": "4 3" if approximate else None, "fillOpacity": 0.75}


def _tooltip(features: list[dict], fields: list[str], aliases: list[str]) -> folium.GeoJsonTooltip | None:
    """A tooltip of the given fields (none for an empty layer: folium refuses fields it cannot see)."""
    return folium.GeoJsonTooltip(fields, aliases=aliases) if features else None


def _fit(m: folium.Map, features: list[dict]) -> None:
    coords = [c for f in features if f.get("geometry") for c in _points(f["geometry"]["coordinates"])]
    if coords:
        lons, lats = zip(*coords, strict=True)
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])


def _points(coords: Any):
    if coords and isinstance(coords[0], (int, float)):
        yield coords[:2]
    else:
        for c in coords:
            yield from _points(c)


def coverage_map(collection: dict, lang: Lang = "vi", basemap: bool = False) -> str:
    """The coverage choropleth of a ``/api/v1/layers/coverage`` answer, as a page."""
    w = WORDS[lang]
    classes = [c["label"] for c in collection["classification"]["classes"]]
    palette = FIXED_COLOURS if collection["classification"]["method"] == "fixed" else dict(zip(classes, COVERAGE_COLOURS, strict=False))
    features = [f for f in collection["features"] if f["geometry"]]
    for f in features:
        p = f["properties"]
        p["tip_actual"] = w["hidden"] if "actual" in p["suppressed"] else p["actual"]
        p["tip_target"] = "—" if p["target_lower"] is None else f"{p['target_lower']:,.0f}"
        p["tip_ratio"] = "—" if p["ratio"] is None else f"{p['ratio']:.0%}"
        p["tip_class"] = w["no data"] if p["class"] == "no data" else p["class"]
        p["tip_status"] = p["status_label"] or "—"
        p["fill"] = palette.get(p["class"], NO_DATA_COLOUR)
    m = new_map(basemap)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=w["coverage"],
        style_function=lambda f: _style(f["properties"]["fill"], f["properties"]["geom_quality"] == "approximate"),
        tooltip=_tooltip(features, ["name", "tip_target", "tip_actual", "tip_ratio", "tip_class", "tip_status"],
                         [w["name"], w["target"], w["actual"], w["ratio"], w["class"], w["status"]]),
    ).add_to(m)
    entries = [(c, palette.get(c, NO_DATA_COLOUR), False) for c in classes] + [(w["no data"], NO_DATA_COLOUR, False)]
    if any(f["properties"]["geom_quality"] == "approximate" for f in features):
        entries.append((w["approximate"], "#ffffff", True))
    m.add_child(Legend(f"{w['coverage']} {collection['period']}", entries, collection["classification"]["description"]))
    folium.LayerControl(collapsed=False).add_to(m)
    _fit(m, features)
    return m.get_root().render()


def hotspot_map(collection: dict, lang: Lang = "vi", basemap: bool = False) -> str:
    """The hot-spot classes of a ``/api/v1/layers/hotspots`` answer, as a page."""
    w = WORDS[lang]
    features = [f for f in collection["features"] if f["geometry"]]
    for f in features:
        p = f["properties"]
        p["tip_class"] = w[p["class"]]
        p["tip_incidents"] = w["hidden"] if p["incidents"] is None else p["incidents"]
    m = new_map(basemap)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=w["hotspots"],
        style_function=lambda f: _style(HOTSPOT_COLOURS[f["properties"]["class"]], f["properties"].get("geom_quality") == "approximate"),
        tooltip=_tooltip(features, ["name", "tip_class", "tip_incidents"], [w["name"], w["class"], w["incidents"]]),
    ).add_to(m)
    entries = [(w[k], c, False) for k, c in HOTSPOT_COLOURS.items()]
    if any(f["properties"].get("geom_quality") == "approximate" for f in features):
        entries.append((w["approximate"], "#ffffff", True))
    m.add_child(Legend(f"{w['hotspots']} {collection['period']}", entries, collection["inference"]))
    folium.LayerControl(collapsed=False).add_to(m)
    _fit(m, features)
    return m.get_root().render()


def recruiter_map(register: dict, areas: dict, lang: Lang = "vi", basemap: bool = False) -> str:
    """Head offices and activity areas (``/api/v1/layers/recruiters`` and ``/recruiter-areas``), as a page."""
    w = WORDS[lang]
    m = new_map(basemap)
    shaped = [f for f in areas["features"] if f["geometry"]]
    for f in shaped:
        p = f["properties"]
        p["tip_registered"] = w["registered"] if p["registered"] else w["unregistered"]
        p["tip_flags"] = len(p["flags"])
    folium.GeoJson(
        {"type": "FeatureCollection", "features": shaped}, name=w["areas"],
        style_function=lambda f: {"fillColor": "#3182bd" if f["properties"]["registered"] else "#e6550d", "color": "#333",
                                  "weight": 1, "fillOpacity": 0.35},
        tooltip=_tooltip(shaped, ["name", "tip_registered", "events", "tip_flags"], [w["name"], "", w["events"], w["flags"]]),
    ).add_to(m)
    offices = folium.FeatureGroup(name=w["head_offices"])
    for f in register["features"]:
        if not f["geometry"]:
            continue
        lon, lat = f["geometry"]["coordinates"]
        p = f["properties"]
        folium.CircleMarker([lat, lon], radius=5, color="#08519c", fill=True, fill_opacity=0.9,
                            tooltip=f"{html.escape(p['name'])} ({html.escape(p['licence_number'])}): {p['events']} {w['events'].lower()}, "
                                    f"{p['flags']} {w['flags'].lower()}").add_to(offices)
    offices.add_to(m)
    m.add_child(Legend(w["recruiters"], [(w["registered"], "#3182bd", False), (w["unregistered"], "#e6550d", False),
                                         (w["head_offices"], "#08519c", False)], areas["period"]))
    folium.LayerControl(collapsed=False).add_to(m)
    _fit(m, shaped or [f for f in register["features"] if f["geometry"]])
    return m.get_root().render()
