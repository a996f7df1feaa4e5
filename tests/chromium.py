"""Headless Chromium for the viewer's browser tests and benchmarks/view.py: the system's own
browser (apt: chromium, chromium-driver; .ci/run installs them) driven by selenium, with
software WebGL (SwiftShader) so the splats draw on a machine without a GPU.

`missing()` says why a browser cannot run here (the tests skip with it); `open_browser(url)`
starts one on a page; `canvas_png` / `click_button` / `type_into` drive viser's page.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
# The page's size: viser's fixed control panel takes the right third, the canvas the rest.
VIEWPORT = (960, 400)
# Milliseconds the page's render loop rests between frames (see open_browser).
FRAME_GAP_MS = 400
# Seconds to wait on one WebDriver call (selenium's default is 120). A frame of software WebGL
# takes 1-3 s on the 2-core machine; the margin is for a runner many times slower, where
# selenium's read timeout would fail a test on a page that is still drawing.
CALL_TIMEOUT_S = 300


def _first(candidates, env: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).exists() else None
    return next((c for c in candidates if Path(c).exists()), None) or shutil.which(Path(candidates[0]).name)


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) executables, or None each where absent ($CHROMIUM, $CHROMEDRIVER override)."""
    return _first(CHROMIUM_CANDIDATES, "CHROMIUM"), _first(CHROMEDRIVER_CANDIDATES, "CHROMEDRIVER")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can ($SPLATFILM_SKIP_BROWSER=1
    skips them: the three take about a minute on a 2-core machine)."""
    if os.environ.get("SPLATFILM_SKIP_BROWSER"):
        return "SPLATFILM_SKIP_BROWSER is set"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    browser, driver = chromium_paths()
    if browser is None:
        return "no Chromium here (apt-get install chromium)"
    if driver is None:
        return "no chromedriver here (apt-get install chromium-driver)"
    return None


PACED_FRAMES_JS = """(() => {
    const raf = window.requestAnimationFrame.bind(window), caf = window.cancelAnimationFrame.bind(window);
    const pending = new Map(); let last = 0;
    window.requestAnimationFrame = (cb) => {
        const id = ++last, p = {frame: 0};
        p.timer = setTimeout(() => { p.frame = raf((ts) => { pending.delete(id); cb(ts); }); }, %d);
        pending.set(id, p);
        return id;
    };
    window.cancelAnimationFrame = (id) => {
        const p = pending.get(id);
        if (p) { clearTimeout(p.timer); if (p.frame) caf(p.frame); pending.delete(id); }
    };
})();"""


def open_browser(url: str, viewport: tuple[int, int] = VIEWPORT, frame_gap_ms: int = FRAME_GAP_MS):
    """A headless Chromium (selenium WebDriver) showing `url` at `viewport` CSS pixels, its render
    loop resting `frame_gap_ms` between frames (0: as fast as it goes)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="splatfilm-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                f"--window-size={viewport[0]},{viewport[1] + 200}"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(driver), options=options)
    d.profile_dir = profile
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": viewport[0], "height": viewport[1], "deviceScaleFactor": 1, "mobile": False})
    d.command_executor.client_config.timeout = CALL_TIMEOUT_S
    d.set_script_timeout(CALL_TIMEOUT_S)
    # Software WebGL makes each frame cost the page's main thread about a second on a small
    # machine; pacing the render loop leaves it time to answer WebDriver between frames. The
    # paced request must stay cancellable: react-three-fiber cancels its pending frame when it
    # stops its loop and starts a new loop on the next change, so a request that
    # cancelAnimationFrame cannot reach leaves the old loop running beside the new one, and
    # the loops (each drawing the scene) pile up: 60 draws a frame after three minutes.
    if frame_gap_ms > 0:
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PACED_FRAMES_JS % int(frame_gap_ms)})
    d.get(url)
    return d


def close_browser(d) -> None:
    d.quit()
    shutil.rmtree(getattr(d, "profile_dir", ""), ignore_errors=True)


def canvas_rect(d) -> dict | None:
    """The page rectangle {x, y, width, height} (CSS pixels) of its largest canvas (viser's 3D view), or None."""
    return d.execute_script("""
        let best = null;
        for (const c of document.querySelectorAll('canvas')) {
            const r = c.getBoundingClientRect();
            if (r.width * r.height > 0 && (!best || r.width * r.height > best.width * best.height))
                best = {x: r.x, y: r.y, width: r.width, height: r.height};
        }
        return best;""")


def wait_for_canvas(d, timeout: float = 120.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        rect = canvas_rect(d)
        if rect is not None:
            return rect
        if time.monotonic() > end:
            raise TimeoutError("no canvas on the page")
        time.sleep(0.5)


def canvas_png(d, path: str | Path | None = None) -> np.ndarray:
    """A screenshot of the 3D canvas as RGB uint8 [H,W,3] (written to `path` as PNG if given):
    one script call for where it is, one DevTools call for its pixels."""
    import base64

    from PIL import Image

    rect = wait_for_canvas(d)
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": {**rect, "scale": 1}})
    png = base64.b64decode(shot["data"])
    if path is not None:
        Path(path).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def click_button(d, label: str, timeout: float = 120.0) -> None:
    """Click the page's button whose text is `label` (close viser's toasts first: its software-WebGL
    warning lies over the canvas). One script call: WebDriver's own element commands each wait
    on a page whose main thread software WebGL keeps busy."""
    end = time.monotonic() + timeout
    while not d.execute_script("""
            for (const b of document.querySelectorAll('.mantine-Notification-root button')) b.click();
            for (const b of document.querySelectorAll('button')) {
                if (b.textContent.trim() === arguments[0] && b.offsetParent !== null) {
                    b.scrollIntoView({block: 'center'}); b.click(); return true;
                }
            }
            return false;""", label):
        if time.monotonic() > end:
            raise TimeoutError(f"no button {label!r} on the page")
        time.sleep(0.5)


def close_notifications(d) -> None:
    """Close viser's toasts (its software-WebGL warning lies over the canvas)."""
    d.execute_script("for (const b of document.querySelectorAll('.mantine-Notification-root button')) b.click();")


def after_frames(d, count: int = 2) -> None:
    """Return once the page has drawn `count` more frames (so what the server sent is on screen)."""
    d.execute_async_script("""
        const done = arguments[arguments.length - 1]; let n = arguments[0];
        const step = () => (--n <= 0) ? done(true) : requestAnimationFrame(step);
        requestAnimationFrame(step);""", count)
