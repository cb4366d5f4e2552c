"""The first page shows the loaded units on a map, in a real (headless) browser."""

import re


def test_map_shows_units_search_and_locate(live_server, browser_page):
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server + "/")
    status = page.locator("#status")
    status.filter(has_text="Toàn quốc: 34/34").wait_for(timeout=20000)
    # All 34 provinces are drawn (Quảng Ninh approximate).
    drawn = page.evaluate("() => { let n = 0; layer.eachLayer(() => n++); return n; }")
    assert drawn == 34
    # Search without diacritics, pick the result: the province is drawn alone.
    page.fill("#q", "ha tinh")
    page.locator("#results li", has_text="Hà Tĩnh").first.click()
    status.filter(has_text="Hà Tĩnh").wait_for(timeout=10000)
    # Drill down into the communes of Hà Tĩnh: approximate polygons, said so.
    page.evaluate("() => show('commune', '42', 'tỉnh Hà Tĩnh')")
    status.filter(has_text=re.compile(r"tỉnh Hà Tĩnh: \d+/\d+ đơn vị có ranh giới, \d+ ước tính")).wait_for(timeout=10000)
    # A click on the map asks locate and shows the units covering the point.
    page.evaluate("() => map.fire('click', {latlng: L.latLng(21.0287, 105.8525)})")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10000)
    assert "Hà Nội" in popup.inner_text() and "≈" in popup.inner_text()
    assert "ước tính" in page.locator(".legend").inner_text()
    assert errors == []
