"""The pages in a real browser: Debian's chromium, headless, driven by Playwright.

`make system-deps` installs chromium; Playwright's own browser download is never used.
Where chromium is missing these tests are skipped with the reason, except under CI, where
the set-up must have installed it and a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.helpers import ENV, ROOT, sh
from tests.web.script import ScriptedGraph
from tests.web.util import Served, wait_for
from vflow_cli.web.graph_page import serve_graph

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(tmp_path):
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = "chromium is not installed (make system-deps)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (make venv)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new, empty user-data dir
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_the_live_picture_moves_and_the_count_shows(browser):
    from playwright.sync_api import expect

    # not --animated: the clock and the frame number are then all that changes
    with Served(
        ["testcard", "--size", "640x360", "--fps", "10"],
        ["count", "--kind", "frame"],
        ["serve", "-p", "0"],
    ) as s:
        browser.goto(f"http://{s.host}/")
        browser.wait_for_function("document.getElementById('live').naturalWidth === 640")
        picture = browser.locator("#live")
        first = _png(picture.screenshot())
        time.sleep(1.5)
        second = _png(picture.screenshot())
        assert first.shape == second.shape
        # the test card's clock: the second caption line, top left (y 17-40, x 8-150 of 640x360)
        h, w = first.shape[:2]
        clock = (slice(int(h * 17 / 360), int(h * 42 / 360)), slice(0, int(w * 160 / 640)))
        bars = (slice(int(h * 0.45), int(h * 0.6)), slice(int(w * 0.05), int(w * 0.12)))
        changed = np.abs(first[clock].astype(int) - second[clock].astype(int)).mean()
        still = np.abs(first[bars].astype(int) - second[bars].astype(int)).mean()
        assert changed > 2 and still < 1, (changed, still)

        count = browser.locator('#meta tr[data-field="count"] td')
        expect(count).to_have_text(re.compile(r"^\d+$"))
        before = int(count.inner_text())
        expect(count).not_to_have_text(str(before), timeout=5000)
        assert int(count.inner_text()) > before
        expect(browser.locator("#status")).to_contain_text("frames/s")


def test_a_token_in_the_link_opens_the_page(browser):
    from playwright.sync_api import expect

    with Served(
        ["testcard", "--size", "320x240", "--animated", "--fps", "10"],
        ["serve", "-p", "0", "--token", "browser-token"],
    ) as s:
        # without it: 401 with a Basic challenge (a person's browser asks for it)
        refused = browser.context.request.get(f"http://{s.host}/")
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Basic")
        browser.goto(f"http://{s.host}/?token=browser-token")
        assert browser.url == f"http://{s.host}/"  # the token left the address bar
        browser.wait_for_function("document.getElementById('live').naturalWidth === 320")
        expect(browser.locator('#meta tr[data-field="seq"] td')).to_have_text(re.compile(r"\d"))


def test_the_graph_page_shows_how_busy_each_node_is_and_marks_the_bottleneck(browser, tmp_path):
    """A real graph: HOG detection is the slow node; the page says so while it runs."""
    from playwright.sync_api import expect

    picture = ROOT / "tests" / "data" / "astronaut.png"
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f"""
[nodes.src]
run = ["images", "{picture}", "--loop", "--frames", "400"]
[nodes.det]
run = ["detect", "--model", "hog"]
from = ["src"]
[nodes.out]
run = ["null"]
from = ["det"]
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "graph", "--serve", "0", str(spec)],
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().decode().split()[-1]
        browser.goto(url)
        expect(browser.locator("#bottleneck")).to_contain_text("det was busy", timeout=60_000)
        expect(browser.locator('#nodes tr[data-node="det"] .busy')).to_contain_text(
            re.compile(r"^detect \d+%")
        )
        expect(browser.locator('#nodes tr[data-node="out"] .busy')).to_contain_text(
            re.compile(r"waits for input \d+%")
        )
        marked = browser.locator('#drawing g.node[data-bottleneck="yes"] title')
        expect(marked).to_have_text("det")
        label = browser.locator('#drawing g.node[data-bottleneck="yes"] text.vf-rate')
        expect(label).to_contain_text(re.compile(r"busy \d+%"))
    finally:
        proc.send_signal(signal.SIGINT)  # the graph drains and the page goes with it
        proc.communicate(timeout=60)
    assert proc.returncode == 130


def test_the_graph_page_shows_rates_and_a_failed_node(browser):
    from playwright.sync_api import expect

    script = ScriptedGraph(rate=40)
    with serve_graph(script.status, script.dot, port=0, interval=0.3) as page:
        browser.goto(page.url)
        rate = browser.locator('#nodes tr[data-node="src"] .rate-out')
        expect(rate).to_have_text(re.compile(r"^\d+\.\d$"), timeout=10000)
        assert float(rate.inner_text()) > 0
        drawn = browser.locator("#drawing g.node", has=browser.locator("title", has_text="fast"))
        expect(drawn.first).to_have_attribute("data-state", "running")
        expect(browser.locator("#drawing text.vf-rate").first).to_contain_text("/s")

        script.fail("slow", "killed by SIGKILL", ["vflow rate: the last words"])
        state = browser.locator('#nodes tr[data-node="slow"] .state')
        expect(state).to_have_text("failed")
        failed = browser.locator('#drawing g.node[data-state="failed"] title')
        expect(failed).to_have_text("slow")
        expect(browser.locator("#failures")).to_be_visible()
        expect(browser.locator('#failures article[data-node="slow"]')).to_contain_text(
            "the last words"
        )
        expect(browser.locator("#failures h3")).to_have_text("slow: killed by SIGKILL")


LIVE_SPEC = """\
[nodes.src]
run = ["testcard", "--size", "160x120", "--fps", "20"]
[nodes.pass]
run = ["identity"]
from = ["src"]
[nodes.out]
run = ["null"]
from = ["pass"]
[nodes.victim]
run = ["every", "1"]
from = ["src"]
[nodes.sink]
run = ["null"]
from = ["victim"]
"""


def _child(parent: int, words: str) -> int:
    """The pid of the child process of `parent` whose command line ends with `words`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and " ".join(argv).strip().endswith(words):
            return int(entry)
    raise AssertionError(f"no child of {parent} runs {words!r}")


def test_a_real_graph_shows_its_rates_and_a_killed_node(browser, tmp_path):
    """`vflow graph --serve`: the runner's own status on the page, real processes, one of
    them killed; --linger keeps the page up after the end to show how the graph ended."""
    from playwright.sync_api import expect

    spec = tmp_path / "live.toml"
    spec.write_text(LIVE_SPEC)
    driver = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "graph", "--serve", "0", "--linger", "60", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
    )
    try:
        assert driver.stderr is not None
        first = driver.stderr.readline().decode().strip()  # the page's address comes first
        assert first.startswith("vflow graph: live page on http://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[1]
        browser.goto(url)
        rate = browser.locator('#nodes tr[data-node="pass"] .rate-in')
        expect(rate).to_have_text(re.compile(r"^\d+\.\d$"), timeout=15000)
        wait = time.monotonic() + 15
        while float(rate.inner_text()) <= 0 and time.monotonic() < wait:
            time.sleep(0.2)
        assert float(rate.inner_text()) > 0

        os.kill(_child(driver.pid, "every 1"), signal.SIGKILL)
        state = browser.locator('#nodes tr[data-node="victim"] .state')
        expect(state).to_have_text("failed", timeout=15000)
        expect(browser.locator('#nodes tr[data-node="victim"]')).to_contain_text(
            "killed by SIGKILL"
        )
        drawn = browser.locator("#drawing g.node").filter(
            has=browser.locator("title", has_text=re.compile(r"^victim$"))
        )
        expect(drawn).to_have_attribute("data-state", "failed")
        # the runner stops the graph after a failure; the page shows how it ended
        expect(browser.locator("#state")).to_contain_text("done (exit", timeout=20000)
        expect(browser.locator('#nodes tr[data-node="pass"] .state')).not_to_have_text("running")
    finally:
        driver.terminate()
        try:
            driver.wait(20)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
        if driver.stderr is not None:
            driver.stderr.close()


def test_serve_wait_shows_the_last_frame_once_the_input_has_ended(browser):
    """`serve --wait`: the input ends, then a browser comes; it paints the last frame,
    and the viewer count is right."""
    from playwright.sync_api import expect

    card = ["testcard", "--size", "320x240", "--frames", "3"]
    with Served(card, ["serve", "-p", "0", "--wait"]) as s:
        wait_for(lambda: "serving the last frame until Ctrl-C" in s.stderr(), what="the end")
        browser.goto(f"http://{s.host}/")
        browser.wait_for_function(
            "document.getElementById('live').complete "
            "&& document.getElementById('live').naturalWidth === 320",
            timeout=15 * 1000,  # milliseconds
        )
        picture = _png(browser.locator("#live").screenshot())
        assert picture.std() > 10  # the test card, not a blank box
        expect(browser.locator("#status")).to_contain_text("input ended")
        expect(browser.locator("#status")).to_contain_text("· 1 viewer")
        # the viewer leaves; the next one's page counts itself alone, though no frame
        # was sent in between to find out that the first had gone
        browser.goto("about:blank")
        second = browser.context.new_page()
        second.goto(f"http://{s.host}/")
        expect(second.locator("#status")).to_contain_text("· 1 viewer", timeout=15000)
        second.close()


def test_the_cursor_shows_frame_pixels_and_clicks_make_a_line_and_a_zone(browser):
    """The picture is shown at another size than the frame's; the page speaks in the
    frame's pixels, and the argument it builds runs as it is."""
    from playwright.sync_api import expect

    with Served(["testcard", "--size", "640x360", "--fps", "10"], ["serve", "-p", "0"]) as s:
        browser.goto(f"http://{s.host}/")
        browser.wait_for_function("document.getElementById('live').naturalWidth === 640")
        box = browser.locator("#live").bounding_box()
        assert box is not None and abs(box["width"] - 640) > 50, box

        def at(x: int, y: int) -> tuple[float, float]:
            scale = box["width"] / 640
            return box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale

        def near(text: str, want: list[int]) -> None:
            got = [int(n) for n in re.findall(r"\d+", text)]
            assert len(got) == len(want), (text, want)
            assert all(abs(g - w) <= 1 for g, w in zip(got, want, strict=True)), (text, want)

        browser.mouse.move(*at(320, 180))
        near(browser.locator("#cursor").inner_text(), [320, 180])
        browser.mouse.move(*at(639, 359))
        near(browser.locator("#cursor").inner_text(), [639, 359])

        command = browser.locator("#command")
        browser.mouse.click(*at(100, 50))
        expect(command).to_have_value("")  # one point is no line yet
        browser.mouse.click(*at(500, 300))
        line = command.input_value()
        assert line.startswith("vflow line line1 "), line
        near(line.rsplit(" ", 1)[1], [100, 50, 500, 300])
        assert browser.locator("#marks circle").count() == 2

        browser.locator("#mode-zone").click()
        for x, y in ((10, 10), (600, 20), (320, 340)):
            browser.mouse.click(*at(x, y))
        zone = command.input_value()
        assert zone.startswith("vflow zone zone1 "), zone
        near(zone.split(" ", 3)[3], [10, 10, 600, 20, 320, 340])
        assert browser.locator("#marks polygon").count() == 1

    for built in (line, zone):  # what the page made is a stage's valid argument
        result = sh(f"vflow testcard --size 640x360 --frames 2 | {built} | vflow null")
        assert result.statuses == [0, 0, 0], result.stderr
