"""Render an HTML file in headless Chromium (Debian's chromium and chromium-driver) and measure
what a reader sees: horizontal scroll, images loaded, the elements wider than the window.

Selenium is given both paths explicitly, so it never runs Selenium Manager (which would try to
download a driver); Debian's chromedriver matches its chromium by construction.
"""
import base64
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Elements a reader scrolls sideways for, with how far each reaches: a table or figure wider
# than the window names itself here, so a failing layout test says which one and by how much.
MEASURE = """
const view = document.documentElement.clientWidth;
const headings = [...document.querySelectorAll('h1, h2, h3, h4')];
const label = (e) => {
  const before = headings.filter((h) => h.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING).pop();
  return e.tagName.toLowerCase() + (e.getAttribute('src') ? ' ' + e.getAttribute('src') : '')
    + (before ? ' under "' + before.textContent.trim() + '"' : '');
};
const reach = (e) => Math.ceil(Math.max(e.getBoundingClientRect().right, e.getBoundingClientRect().left + e.scrollWidth));
return {
  viewport: view,
  scroll: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  images: [...document.images].map((i) => ({src: i.getAttribute('src'), complete: i.complete, natural_width: i.naturalWidth})),
  wide: [...document.querySelectorAll('table, img, pre, figure, svg')]
    .map((e) => ({element: label(e), width: reach(e), view: view})).filter((w) => w.width > view),
};
"""


@dataclass
class Page:
    viewport_width: int
    scroll_width: int
    images: list[dict]  # src, complete, natural_width of every <img>, in page order
    wide: list[dict]  # element, width (px reached), view: every table/figure wider than the window
    screenshot: Path

    @property
    def scrolls_sideways(self) -> bool:
        return self.scroll_width > self.viewport_width

    @property
    def broken_images(self) -> list[str]:
        return [i["src"] for i in self.images if not (i["complete"] and i["natural_width"] > 0)]


def available() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def render(html: Path, width: int, screenshot: Path, height: int = 900) -> Page:
    """Open `html` in a `width`-px headless window; save a whole-page PNG to `screenshot`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(Path(html).resolve().as_uri())  # returns after the load event: images are done
        seen = driver.execute_script(MEASURE)
        # The whole page, `width` px of it, in one PNG (a window screenshot shows one window height).
        clip = {"x": 0, "y": 0, "width": width, "height": min(seen["height"], 16384), "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.quit()
    return Page(seen["viewport"], seen["scroll"], seen["images"], seen["wide"], Path(screenshot))
