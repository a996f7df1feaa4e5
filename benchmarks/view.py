"""`splatfilm view` on the bundled demo film (70k-Gaussian set, a walking rigged character, a
dropped crate): how long until the browser shows it, and how fast the timeline scrubs.

    python benchmarks/view.py                  # needs Chromium + chromedriver (tests/chromium.py)
    python benchmarks/view.py --no-browser     # the server side only

Rows:
- open: reading and validating the film (assets, rig, physics), before any server;
- server start: the viser server up with the static set and the moving assets sent;
- first frame: page load in headless Chromium (software WebGL) until the splats are drawn;
- scrub (server): timeline frames applied per second while the character walks (compose the
  moving assets, pose the rig, send them): each a new frame, back to back;
- scrub (browser): frames per second the page draws while the timeline plays; software WebGL
  on this machine's cores, so a GPU browser draws far faster.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

FILM = Path(__file__).resolve().parent.parent / "scenes" / "set" / "film.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-browser", action="store_true", help="skip the rows that need Chromium")
    ap.add_argument("--frames", type=int, default=48, help="timeline frames to scrub (default 48: 2 s of walk)")
    args = ap.parse_args()

    from splatfilm.view.app import Viewer
    from splatfilm.view.ports import free_port
    from splatfilm.view.session import open_session

    rows = []
    t = time.perf_counter()
    session = open_session(FILM)
    rows.append(("open film", f"{time.perf_counter() - t:.1f} s", f"{sum(len(a.gaussians) for a in session.world.assets.values())} "
                 f"Gaussians; static {', '.join(session.static)}; moving {', '.join(session.moving)}"))
    t = time.perf_counter()
    viewer = Viewer(session, "127.0.0.1", free_port(), backend="cpu")
    viewer.wait_idle()
    rows.append(("server start", f"{time.perf_counter() - t:.1f} s", viewer.url))

    # Server-side scrub: each frame of the walk in turn, applied before the next is asked for.
    first = session.frame_of(0.5)
    moving = sum(len(g) for g in session.moving_gaussians(session.time_of(first), None).values())
    t = time.perf_counter()
    for k in range(args.frames):
        viewer.request(first + k)
        viewer.wait_idle()
    rate = args.frames / (time.perf_counter() - t)
    rows.append(("scrub (server)", f"{rate:.1f} updates/s", f"{moving} moving Gaussians re-sent per update "
                 f"({moving * 32 / 1e6:.2f} MB); goal >= 10"))

    if not args.no_browser:
        import chromium

        why = chromium.missing()
        if why is not None:
            rows.append(("first frame", "skipped", why))
        else:
            t = time.perf_counter()
            d = chromium.open_browser(viewer.url, frame_gap_ms=0)
            try:
                while True:
                    shot = chromium.canvas_png(d)
                    grey = shot.astype(np.float64).mean(-1)
                    if grey.std() > 12 or time.perf_counter() - t > 300:
                        break
                rows.append(("first frame", f"{time.perf_counter() - t:.1f} s",
                             "page load to splats drawn: headless Chromium, software WebGL, 960x400 page"))
                viewer.request(first)
                viewer.wait_idle()
                viewer.toggle_play()
                fps = d.execute_async_script("""
                    const done = arguments[arguments.length - 1]; let n = 0; const t0 = performance.now();
                    const f = () => { n++; if (performance.now() - t0 < 5000) requestAnimationFrame(f);
                                      else done(n / ((performance.now() - t0) / 1000)); };
                    requestAnimationFrame(f);""")
                viewer.toggle_play()
                rows.append(("scrub (browser)", f"{fps:.1f} frames/s", "page frames drawn while the film plays "
                             f"({viewer.updates} timeline updates applied in all)"))
            finally:
                chromium.close_browser(d)
    viewer.stop()

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'figure':>16}  notes")
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure:>16}  {note}")


if __name__ == "__main__":
    main()
