"""The HTML report in a real browser (headless Chromium through selenium): it renders
without console errors, stepping to the halt height shows the halt, stepping on hides it,
the round filter hides other rounds, and the screenshot is a real picture with the halt
banner's red in it. Every section of the incident is on the page and photographed (under
the test's tmp dir, `screenshots/`), no text sticks out of its SVG at any height the jump
buttons reach, lying-minority's evidence card shows the forged root against the certified
one, and the account search filters its table. One browser and two small runs serve the
whole module. Under CI (CI=true) a missing Chromium is a failure, not a skip."""

import os
import shutil
import struct
import tempfile
import zlib

import pytest

from scenarios.html import write_html
from scenarios.loader import load_scenario
from teaching_support import load_small_scenario, record_small_run

SECTIONS = ("summary", "cascade", "roots", "messages", "halt", "vote", "certificate", "restore", "reopening",
            "ledgers", "checks", "glossary")
# Every <text> of every SVG on screen whose box leaves its SVG's box (by more than half a pixel).
CLIPPED_TEXT = """
var out = [];
document.querySelectorAll('svg').forEach(function (svg) {
  var b = svg.getBoundingClientRect();
  if (!b.width) { return; }
  svg.querySelectorAll('text').forEach(function (t) {
    var r = t.getBoundingClientRect();
    if (r.width && (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5)) {
      out.push(t.textContent);
    }
  });
});
return out;
"""

HALT_RED = (0xCF, 0x22, 0x2E)  # #halt-banner's background
WINDOW = (1280, 1100)


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
def lying_page(page):
    """lying-minority under --small: a forged halt view, convicted against the certified root."""
    folder = page[1].parent
    _, report, log = record_small_run(load_scenario("lying-minority", small=True))
    path = folder / "lying.html"
    write_html(report, log.get_ordered(), path)
    return path, report


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
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}"):
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


def _is_picture(path) -> bool:
    """A PNG of some size with something in it (decoding whole sections in Python is slow: a
    blank or one-colour image compresses to a few hundred bytes, a section of text and lines
    to many kilobytes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width > 100 and height > 40 and len(data) > 4000


def test_every_section_is_on_the_page_and_photographed(page, lying_page, driver, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    for name, path in (("faulty-small", page[1]), ("lying-minority-small", lying_page[0])):
        driver.get(path.as_uri())
        for section in SECTIONS:
            element = driver.find_element("id", section)
            assert element.is_displayed() and element.text.strip(), (name, section)
            if section == "glossary":  # the same words on every page, and the tallest picture: not taken
                continue
            # the window as tall as the section, so that the picture holds all of it
            tall = element.size["height"] + 200 > WINDOW[1]
            if tall:
                driver.set_window_size(WINDOW[0], min(element.size["height"] + 200, 6000))
            driver.execute_script("arguments[0].scrollIntoView()", element)
            shot = shots / f"{name}-{section}.png"
            element.screenshot(str(shot))
            assert _is_picture(shot), shot
            if tall:
                driver.set_window_size(*WINDOW)
        summary = driver.find_element("id", "summary").text
        assert "halt" in summary and "restarted as fork 1" in summary and "paid" in summary


def test_no_text_leaves_its_svg_at_any_height(page, lying_page, driver):
    for path in (page[1], lying_page[0]):
        driver.get(path.as_uri())
        clipped = driver.execute_script(
            "var slider = document.getElementById('height-slider'), found = [];"
            "for (var i = 0; i <= parseInt(slider.max, 10); i++) {"
            "  slider.value = String(i); slider.dispatchEvent(new Event('input'));"
            f"  found = found.concat((function () {{ {CLIPPED_TEXT} }})().map(function (t) {{ return i + ': ' + t; }}));"
            "}"
            "return found;")
        assert clipped == [], (path, clipped)
    # Plant: a label past the right edge of a chart is caught.
    driver.execute_script("var svg = document.querySelector('svg.chart');"
                          "var t = document.createElementNS('http://www.w3.org/2000/svg', 'text');"
                          "t.setAttribute('x', svg.width.baseVal.value - 10); t.setAttribute('y', 20);"
                          "t.textContent = 'planted label'; svg.appendChild(t);")
    assert driver.execute_script(CLIPPED_TEXT) == ["planted label"]


def test_the_forged_view_is_shown_against_the_certified_root(lying_page, driver):
    path, report = lying_page
    driver.get(path.as_uri())
    (evidence,) = [e for e in report["forensics"]["evidence"] if e["kind"] == "view-contradicts-certified-header"]
    card = driver.find_element("id", f"evidence-{evidence['validator']}")
    assert card.is_displayed()
    assert evidence["claimed_root"] in card.text and evidence["certified_root"] in card.text
    lanes = driver.find_elements("css selector", "#messages .height-view:not(.hidden) text.lane-label.byzantine")
    assert {lane.text for lane in lanes} >= {b["behaviour"] for b in report["validators"]["byzantine"]}
    assert driver.find_elements("css selector", "#halt svg.lamport line.msg"), "the halt views are drawn as messages"


def test_the_account_search_filters_the_returned_table(page, driver):
    _, path, report = page
    driver.get(path.as_uri())
    account = report["restore"]["returned"]["entries"][0]["account"]
    box = driver.find_element("css selector", 'input[data-table="returned-table"]')
    driver.execute_script("arguments[0].scrollIntoView()", box)
    box.send_keys(account[2:12])
    shown = [r for r in driver.find_elements("css selector", "#returned-table tr")[1:] if r.is_displayed()]
    assert [r.text.split()[0] for r in shown] == [account]
