"""The browser harness itself: it sees console errors and drawn charts (so page tests can rely on it)."""

from tests.browser import chart_sizes


def test_harness_sees_console_errors_and_charts(browser, tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<!doctype html><html><body><svg width='40' height='20'><rect width='10' height='10'/>"
                    "</svg><script>console.error('broken on purpose')</script></body></html>")
    seconds = browser.open(page.as_uri())
    assert seconds < 30
    assert any("broken on purpose" in m for m in browser.errors())
    charts = chart_sizes(browser)
    assert charts == [{"tag": "svg", "width": 40, "height": 20, "shapes": 1, "id": ""}]
    assert browser.shoot("harness").stat().st_size > 0
