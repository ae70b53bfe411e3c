"""The report as a person sees it: the tiny grid's index.html in headless Chromium at 1280 px."""
import pytest

import browser

WIDTH = 1280

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not browser.available(), reason=f"needs {browser.CHROMIUM} and {browser.CHROMEDRIVER} (apt-get install chromium chromium-driver)"),
]


def test_report_fits_a_1280_px_window_with_every_image_loaded(grid_run, tmp_path):
    cfg, _ = grid_run
    page = browser.render(cfg.run_dir / "report" / "index.html", WIDTH, tmp_path / "report.png")
    assert page.images, "the report shows no figure"
    assert not page.broken_images, f"images that did not load: {page.broken_images}"
    assert not page.scrolls_sideways, (
        f"page is {page.scroll_width} px wide in a {page.viewport_width} px viewport; "
        f"too wide: {page.wide}; screenshot {page.screenshot}"
    )
