"""The HTML report in a real browser (headless Chromium through selenium): it renders
without console errors, stepping to the halt height shows the halt, stepping on hides it,
the round filter hides other rounds, and the screenshot is a real picture with the halt
banner's red in it. Under CI (CI=true) a missing Chromium is a failure, not a skip."""

import os
import shutil
import struct
import tempfile
import zlib

import pytest

from scenarios.html import write_html
from teaching_support import load_small_scenario, record_small_run

HALT_RED = (0xCF, 0x22, 0x2E)  # #halt-banner's background


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths; skip or, under CI, fail when they are missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        selenium_ok = False
    else:
        selenium_ok = True
    if chromium and driver and selenium_ok:
        return chromium, driver
    missing = "Chromium and chromedriver (apt-get install chromium chromium-driver) and selenium"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test needs {missing}")
    pytest.skip(f"needs {missing}")


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit truecolour PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6), header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r) if channels == 3 else bytes(b for j, b in enumerate(r) if j % 4 != 3)
                           for r in rows]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser = find_browser()
    folder = tmp_path_factory.mktemp("browser")
    _, report, log = record_small_run(load_small_scenario(folder))
    path = folder / "page.html"
    write_html(report, log.get_ordered(), path)
    return browser, path, report


@pytest.fixture(scope="module")
def driver(page):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    (chromium, chromedriver), _, _ = page
    options = Options()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="l2sim-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1100", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_page_renders_without_console_errors(page, driver):
    _, path, report = page
    driver.get(path.as_uri())
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == [], errors
    assert driver.find_element("id", "height-label").text.endswith("height 1")
    assert not driver.find_element("id", "halt-banner").is_displayed()


def test_stepping_to_the_halt_shows_it_and_stepping_on_hides_it(page, driver, tmp_path):
    _, path, report = page
    halt = report["incident"]["halt_height"]
    driver.get(path.as_uri())
    driver.find_element("id", "jump-halt").click()
    banner = driver.find_element("id", "halt-banner")
    assert banner.is_displayed() and f"past height {halt}" in banner.text
    assert driver.find_element("id", "height-label").text == f"fork 0 (before the halt) · height {halt}"
    view = driver.find_element("id", f"h-0-{halt}")
    assert view.is_displayed() and "HALT" in view.find_element("css selector", "svg.lamport").text
    assert len(view.find_elements("css selector", "g.icon.halt")) == report["validators"]["count"]
    driver.execute_script("document.getElementById('messages').scrollIntoView()")
    shot = tmp_path / "halt.png"
    driver.save_screenshot(str(shot))
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == tuple(driver.execute_script("return [window.innerWidth, window.innerHeight]"))
    colours = {row[i:i + 3] for row in rows[::4] for i in range(0, len(row), 12)}
    assert len(colours) > 40, "the screenshot is blank"
    red = sum(row.count(bytes(HALT_RED)) for row in rows) // 3
    assert red > 2000, "the halt banner is not on screen"
    driver.find_element("id", "next").click()
    assert not driver.find_element("id", "halt-banner").is_displayed()
    assert driver.find_element("id", "height-label").text != f"fork 0 (before the halt) · height {halt}"


def test_round_filter_hides_other_rounds(page, driver):
    from selenium.webdriver.support.ui import Select

    _, path, _ = page
    driver.get(path.as_uri())
    views = driver.find_elements("css selector", ".height-view")
    index = next(i for i, v in enumerate(views) if v.find_elements("css selector", '[data-r="1"]'))
    driver.execute_script(f"document.getElementById('height-slider').value = {index};"
                          "document.getElementById('height-slider').dispatchEvent(new Event('input'));")
    view = driver.find_elements("css selector", ".height-view")[index]
    Select(driver.find_element("id", "round-select")).select_by_value("1")
    assert all(not e.is_displayed() for e in view.find_elements("css selector", '[data-r="0"]'))
    assert any(e.is_displayed() for e in view.find_elements("css selector", '[data-r="1"]'))


def test_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        find_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        find_browser()
