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


def _first(candidates, env: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).exists() else None
    return next((c for c in candidates if Path(c).exists()), None) or shutil.which(Path(candidates[0]).name)


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) executables, or None each where absent ($CHROMIUM, $CHROMEDRIVER override)."""
    return _first(CHROMIUM_CANDIDATES, "CHROMIUM"), _first(CHROMEDRIVER_CANDIDATES, "CHROMEDRIVER")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
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


def open_browser(url: str, viewport: tuple[int, int] = VIEWPORT):
    """A headless Chromium (selenium WebDriver) showing `url` at `viewport` CSS pixels."""
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
    d.set_script_timeout(120)
    d.get(url)
    return d


def close_browser(d) -> None:
    d.quit()
    shutil.rmtree(getattr(d, "profile_dir", ""), ignore_errors=True)


def canvas_element(d, timeout: float = 60.0):
    """The largest canvas on the page (viser's 3D view)."""
    from selenium.webdriver.common.by import By

    end = time.monotonic() + timeout
    while True:
        canvases = [c for c in d.find_elements(By.TAG_NAME, "canvas") if c.size["width"] * c.size["height"] > 0]
        if canvases:
            return max(canvases, key=lambda c: c.size["width"] * c.size["height"])
        if time.monotonic() > end:
            raise TimeoutError("no canvas on the page")
        time.sleep(0.5)


def canvas_png(d, path: str | Path | None = None) -> np.ndarray:
    """A screenshot of the 3D canvas as RGB uint8 [H,W,3] (written to `path` as PNG if given)."""
    from PIL import Image

    png = canvas_element(d).screenshot_as_png
    if path is not None:
        Path(path).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def close_notifications(d) -> None:
    """Close viser's toasts (its software-WebGL warning lies over the canvas)."""
    from selenium.webdriver.common.by import By

    for button in d.find_elements(By.CSS_SELECTOR, ".mantine-Notification-closeButton, .mantine-Notification-root button"):
        try:
            button.click()
        except Exception:
            pass


def find_button(d, label: str, timeout: float = 60.0):
    """The page's button whose text is `label`."""
    from selenium.webdriver.common.by import By

    end = time.monotonic() + timeout
    while True:
        for b in d.find_elements(By.XPATH, f"//button[normalize-space(.)={_xpath_literal(label)}]"):
            if b.is_displayed():
                return b
        if time.monotonic() > end:
            raise TimeoutError(f"no button {label!r} on the page")
        time.sleep(0.3)


def click_button(d, label: str) -> None:
    b = find_button(d, label)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", b)
    b.click()


def _xpath_literal(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"
