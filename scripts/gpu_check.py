"""The GPU check: gsplat end to end on a bare CUDA machine, in one call with a time budget.

    bash scripts/gpu_wheels.sh                       # here, online: wheels into .whl/, the demo's physics baked
    bash scripts/gpu_check.sh --out "$OUT"           # there: install, build gsplat, tests, benchmarks, film, refine
    bash scripts/gpu_check.sh --dry-run --out DIR    # anywhere: the same steps on the CPU, tiny, in ~70 s

Steps, each a subprocess with its own time limit inside the whole budget (default 540 s, so
the check ends inside a 10-minute call with a minute to spare; a step that would start with
too little time left is reported as not run):

1. environment: the card, driver, nvcc, torch and Python, into the summary.
2. install: the wheels of WHEELS/ into a private folder (no index, no dependencies: the
   machine has torch and the rest); splatfilm runs from this checkout. Dry run: nothing is
   installed; instead the modules such a machine lacks (open3d, pybullet, pycolmap, usd-core,
   OpenEXR, ray, diffusers, viser, ffmpeg, ...) are made unimportable for every later step, so
   an import of one on the render and fit path fails here first.
3. build: gsplat's CUDA extension, compiled once for this card's architecture alone with a job
   per core (TORCH_CUDA_ARCH_LIST, MAX_JOBS), kept in .gsplat-build/ for a rerun on the same
   machine. Not in a dry run.
4. tests: the CUDA-marked tests (gsplat against the cpu backend: images, alpha, depth,
   gradients, lens models; classic and antialiased Gaussians in one call, also over two
   cameras and through a fisheye; SH degree 4 with its gradients; extra feature channels per
   camera with a background each; a lower SH degree than stored; near and far planes; an
   empty scene). In a dry run they are collected and skip.
5. render: benchmarks/render.py with splatfilm's gsplat backend beside bare gsplat.rasterization
   on the standard rows plus 1M and 3M Gaussians at 1920x1080. (The cpu backend's box rows on
   the machine's cores come last, as time allows: render-cpu.)
6. fit: benchmarks/fit.py on the bundled set, gsplat, 7000 steps, beside a bare gsplat loop with
   the same recipe; held-out views and held-out path PSNR.
7. film: the demo film rendered on the GPU (--frames-only: the machine has no ffmpeg or
   usd-core), frames per second.
8. refine: `splatfilm refine` of the demo's set toward the film's shots (2 folds of 500 steps,
   750 refiner iterations, 2 rounds of 300 steps, 8 views a round: the defaults' stages at
   about half their work).

Budget as planned (not yet measured on a GPU): install 10 s, build 60-180 (gsplat's sources
compile with nvcc 13 for sm_90 in 760 CPU-seconds, the longest file 76 s), tests 60-90,
render 40-60, fit 90-150, film 20-40, refine 60-120. A build at the slow end leaves the last
steps "not run"; `--only fit,film,refine` in a second call on the still-warm machine finishes
them without building again.

Everything lands in OUT (at most 8 files): summary.md (a table of the steps, then the tables
and lines to paste into benchmarks/README.md), gpu_check.log (every step's output, written as
it runs, so a killed call still returns it), results.json, and a few frames. Exit status 0
when every step passed, 1 otherwise. Standard library only: it runs before anything is
installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What the device machine lacks and the check does not carry: imported only where used.
NOT_ON_DEVICE = ("open3d", "pybullet", "pycolmap", "pxr", "OpenEXR", "Imath", "ray", "diffusers", "viser", "c2pa",
                 "libusb_package", "imageio_ffmpeg", "opentimelineio", "otio_cmx3600_adapter", "trimesh",
                 "pygltflib", "mitsuba", "selenium")
BLOCKER = '''\
"""Written by scripts/gpu_check.py --dry-run: the modules a bare GPU machine lacks, unimportable."""
import sys

BLOCKED = {blocked!r}


class _NotOnDevice:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU machine)", name=name)


sys.meta_path.insert(0, _NotOnDevice())
'''
FILM = REPO / "scenes" / "set" / "film.yaml"
SET_PLY = REPO / "scenes" / "set" / "fitted" / "set.ply"


@dataclass
class Step:
    name: str
    status: str = "not run"  # ok, failed, timed out, skipped, not run
    seconds: float = 0.0
    result: str = ""
    tables: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class Check:
    """The state of one run: where things go, the clock, the environment every step gets."""

    out: Path
    work: Path
    dry_run: bool
    deadline: float
    log: object
    env: dict
    steps: list[Step] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def run(self, step: Step, cmd: list[str], limit: float, env: dict | None = None) -> bool:
        """Run `cmd` from the checkout, its output streamed into the log; False unless it
        exits 0 within min(limit, the time left)."""
        limit = min(limit, self.left() - 10)
        if limit < 15:
            step.status, step.result = "not run", "out of time"
            self.say(f"== {step.name}: not run, {self.left():.0f} s left")
            return False
        self.say(f"== {step.name}: {' '.join(cmd)} (limit {limit:.0f} s)")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        lines: list[str] = []
        try:
            for line in _lines_until(proc, t0 + limit):
                lines.append(line)
                self.log.write(line + "\n")
                self.log.flush()
            code = proc.wait(timeout=max(1.0, t0 + limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            _kill(proc)
        step.seconds += time.monotonic() - t0
        step.output += "\n".join(lines) + "\n"
        if code == 0:
            step.status = "ok"
            return True
        step.status = "timed out" if code is None else "failed"
        tail = [ln for ln in lines if ln.strip()][-1:] or ["(no output)"]
        step.result = step.result or tail[0][-200:]
        self.say(f"== {step.name}: {step.status} after {time.monotonic() - t0:.0f} s")
        return False

    def keep(self, source: Path, name: str) -> None:
        """Copy a file into OUT (the check returns at most 8)."""
        if source.exists() and len(self.files) < 5:
            shutil.copyfile(source, self.out / name)
            self.files.append(self.out / name)


def _lines_until(proc: subprocess.Popen, deadline: float):
    """The process's output lines until it ends, or TimeoutExpired at the deadline. Read raw, so
    a progress bar's carriage returns never block the clock; a line keeps its last redraw."""
    import select

    fd, buf = proc.stdout.fileno(), b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        if not select.select([fd], [], [], min(left, 5.0))[0]:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if buf:
                yield buf.decode(errors="replace").split("\r")[-1]
            return
        *done, buf = (buf + chunk).split(b"\n")
        for line in done:
            yield line.decode(errors="replace").rstrip("\r").split("\r")[-1]


def _kill(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def _tables(text: str) -> list[str]:
    """The markdown tables of a benchmark's output, each with the line above it."""
    blocks, current, before = [], [], ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not current and before:
                current.append(before)
            current.append(line)
        else:
            if current:
                blocks.append("\n".join(current))
                current = []
            before = line if line.strip() else before
    if current:
        blocks.append("\n".join(current))
    return blocks


def _python(check: Check) -> str:
    return check.env.get("SPLATFILM_PYTHON", sys.executable)


# ---- the steps ------------------------------------------------------------------------------


def step_environment(check: Check) -> None:
    step = Step("environment")
    check.steps.append(step)
    probe = ("import sys, torch, numba, numpy; print('python', sys.version.split()[0], '| torch', torch.__version__, "
             "'| CUDA', torch.version.cuda, '| numba', numba.__version__, '| numpy', numpy.__version__); "
             "print('gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none', "
             "torch.cuda.get_device_capability() if torch.cuda.is_available() else '')")
    if check.run(step, [_python(check), "-c", probe], 60):
        step.result = " ; ".join(ln for ln in step.output.splitlines() if ln.strip())
    for tool in (["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                 ["nvcc", "--version"]):
        exe = shutil.which(tool[0], path=check.env["PATH"])
        line = "not found"
        if exe:
            try:
                res = subprocess.run([exe, *tool[1:]], capture_output=True, text=True, timeout=20, check=False)
                line = ([ln for ln in res.stdout.splitlines() if ln.strip()] or ["(no output)"])[-1].strip()
            except (OSError, subprocess.TimeoutExpired) as e:
                line = f"failed: {e}"
        step.result += f" ; {tool[0]}: {line}"
        check.say(f"{tool[0]}: {line}")


def step_bake(check: Check) -> None:
    """Dry run only: what scripts/gpu_wheels.sh does before a device call, the demo's physics
    baked where pybullet is, so the film step below reads the bake as the device will."""
    step = Step("bake")
    check.steps.append(step)
    if check.run(step, [_python(check), "scripts/gpu_check.py", "--bake"], 60):
        step.result = step.output.strip().splitlines()[-1]


def step_install(check: Check, wheels: Path) -> bool:
    step = Step("install")
    check.steps.append(step)
    site = check.work / "site"
    if check.dry_run:
        blocker = check.work / "not_on_device"
        blocker.mkdir(parents=True, exist_ok=True)
        (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(NOT_ON_DEVICE)))
        check.env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO)])
        step.result = f"dry run: nothing installed; {len(NOT_ON_DEVICE)} modules made unimportable"
    else:
        found = sorted(wheels.glob("*.whl"))
        if not found:
            step.status, step.result = "failed", f"{wheels}: no wheels (make them with scripts/gpu_wheels.sh)"
            check.say(f"== install: {step.result}")
            return False
        cmd = [_python(check), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, found)]
        if not check.run(step, cmd, 120):
            return False
        check.env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
        step.result = f"{len(found)} wheels: " + ", ".join(w.name.split("-")[0] + " " + w.name.split("-")[1]
                                                         for w in found)
    # The render and fit path imports with what the machine has: torch, numpy, numba, gsplat, the light ones.
    probe = ("import splatfilm.cli, splatfilm.fit, splatfilm.film.render, splatfilm.refine.run, gsplat, splines; "
             "print('imports: splatfilm', splatfilm.__file__, '| gsplat', gsplat.__version__)")
    ok = check.run(step, [_python(check), "-c", probe], 60)
    if ok:
        step.result += " ; " + step.output.strip().splitlines()[-1]
    return ok


def step_build(check: Check) -> bool:
    step = Step("build")
    check.steps.append(step)
    if check.dry_run:
        step.status, step.result = "skipped", "dry run: no CUDA"
        return True
    capability = subprocess.run([_python(check), "-c", "import torch; print('%d.%d' % torch.cuda.get_device_capability())"],
                                capture_output=True, text=True, env=check.env, check=False).stdout.strip()
    # VERBOSE: the compiler's commands and errors go into the log that comes back.
    env = dict(check.env, TORCH_CUDA_ARCH_LIST=capability or "9.0", MAX_JOBS=str(os.cpu_count() or 8),
               TORCH_EXTENSIONS_DIR=str(REPO / ".gsplat-build"), VERBOSE="1")
    if not shutil.which("nvcc", path=env["PATH"]) and "CUDA_HOME" not in env:
        # torch finds the toolkit by CUDA_HOME, then nvcc on PATH, then /usr/local/cuda.
        for home in ["/usr/local/cuda", *sorted(Path("/usr/local").glob("cuda-*"), reverse=True)]:
            if (Path(home) / "bin" / "nvcc").exists():
                env["CUDA_HOME"] = str(home)
                break
    check.env.update({k: env[k] for k in ("TORCH_CUDA_ARCH_LIST", "TORCH_EXTENSIONS_DIR", "CUDA_HOME") if k in env})
    probe = ("import time; t = time.time(); from gsplat.cuda._backend import _C; "
             "assert _C is not None, 'gsplat has no CUDA extension'; print(f'gsplat CUDA extension in {time.time() - t:.0f} s')")
    ok = check.run(step, [_python(check), "-c", probe], 330, env)
    step.result = (f"sm_{capability.replace('.', '')}, {env['MAX_JOBS']} jobs; "
                   + (step.output.strip().splitlines() or [""])[-1] if ok else step.result)
    return ok


def step_tests(check: Check, gsplat_ok: bool) -> None:
    step = Step("tests")
    check.steps.append(step)
    if not check.dry_run and not gsplat_ok:
        step.status, step.result = "skipped", "no gsplat build"  # each test would try to build it again
        return
    # Every test module with a CUDA mark (collecting the whole suite would import modules the
    # machine lacks): gsplat against cpu, lens models, per-Gaussian rasterize modes, SH degree 4,
    # features, fitting through lenses on gsplat.
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                   if "pytest.mark.cuda" in p.read_text())
    check.run(step, [_python(check), "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *files], 150)
    counts = re.findall(r"\d+ (?:passed|failed|skipped|deselected|error)\w*", step.output)
    step.result = ", ".join(counts) or step.result
    if check.dry_run and step.status == "ok" and "passed" in step.result:
        step.status, step.result = "failed", f"the CUDA tests ran without CUDA: {step.result}"


def step_render(check: Check, gsplat_ok: bool) -> None:
    """splatfilm's gsplat backend beside the bare call (dry run: the cpu backend, tiny)."""
    step = Step("render")
    check.steps.append(step)
    if check.dry_run:
        check.run(step, [_python(check), "benchmarks/render.py", "--backends", "cpu", "--scenes", "",
                         "--rows", "10k@160x120", "--repeats", "1"], 120)
    elif not gsplat_ok:
        step.status, step.result = "skipped", "no gsplat build"
        return
    else:
        check.run(step, [_python(check), "benchmarks/render.py", "--backends", "gsplat,gsplat-bare",
                         "--rows", "1m@1920x1080,3m@1920x1080", "--repeats", "5"], 150)
    step.tables = _tables(step.output)
    ratios = [float(r) for r in re.findall(r"\| (\d+\.\d+)x \|", step.output)]
    rows = sum(ln.startswith(("| cpu", "| gsplat")) for ln in step.output.splitlines())
    step.result = step.result or f"{rows} row(s)" + (f"; splatfilm/bare fps {min(ratios):.2f}-{max(ratios):.2f}x"
                                                     if ratios else "")


def step_render_cpu(check: Check) -> None:
    """The cpu backend's box rows on this machine's cores: last, as time allows."""
    step = Step("render cpu")
    check.steps.append(step)
    check.run(step, [_python(check), "benchmarks/render.py", "--backends", "cpu", "--scenes", "box",
                     "--repeats", "2"], 100)
    step.tables = _tables(step.output)
    step.result = step.result or f"{sum(ln.startswith('| cpu') for ln in step.output.splitlines())} row(s)"


def step_fit(check: Check, gsplat_ok: bool) -> None:
    step = Step("fit")
    check.steps.append(step)
    renders = check.work / "fit_renders"
    if check.dry_run:
        args = ["--backend", "cpu", "--steps", "20", "--bare", "--max-size", "160"]
    elif not gsplat_ok:
        step.status, step.result = "skipped", "no gsplat build"
        return
    else:
        args = ["--backend", "gsplat", "--steps", "7000", "--bare"]
    check.run(step, [_python(check), "benchmarks/fit.py", *args, "--out", str(check.work / "fit"),
                     "--renders", str(renders)], 200)
    step.tables = _tables(step.output)
    found = re.search(r"time per step (\S+) the bare loop's; held-out PSNR (\S+) dB", step.output)
    if found:
        step.result = f"{found.group(1)} the bare loop's time per step, held-out PSNR {found.group(2)} dB against it"
    pngs = sorted(renders.glob("*.png"))
    if pngs:
        check.keep(pngs[0], "fit_heldout.png")


def step_film(check: Check, gsplat_ok: bool) -> None:
    step = Step("film")
    check.steps.append(step)
    out = check.work / "film"
    args = ["--backend", "cpu", "--shots", "sh030"] if check.dry_run else ["--backend", "gsplat"]
    if not check.dry_run and not gsplat_ok:
        step.status, step.result = "skipped", "no gsplat build"
        return
    check.run(step, [_python(check), "-m", "splatfilm", "render", str(FILM), "-o", str(out), "--frames-only", *args],
              120)
    found = re.search(r"rendered (\d+) frame\(s\), kept \d+ in ([\d.]+) s", step.output)
    if found:
        frames, seconds = int(found.group(1)), float(found.group(2))
        step.result = f"{frames} frames in {seconds:.1f} s: {frames / seconds:.1f} frames/s (scene load included)"
    for shot in ("sh010", "sh030"):
        pngs = sorted((out / shot).glob("*.png"))
        if pngs:
            check.keep(pngs[len(pngs) // 2], f"film_{shot}.png")


def step_refine(check: Check, gsplat_ok: bool) -> None:
    step = Step("refine")
    check.steps.append(step)
    out = check.work / "refine" / "set.ply"
    if check.dry_run:
        args = ["--backend", "cpu", "--folds", "2", "--pair-steps", "10", "--rounds", "1", "--steps", "5",
                "--views", "2", "--refiner-iterations", "5", "--downscale", "4"]
    elif not gsplat_ok:
        step.status, step.result = "skipped", "no gsplat build"
        return
    else:
        # Fewer folds, steps and rounds than the defaults, to fit the call; the same stages.
        # The per-scene refiner trains on the CPU's cores whatever the backend (its training is
        # reproducible there); 750 iterations is half the default.
        args = ["--backend", "gsplat", "--folds", "2", "--pair-steps", "500", "--rounds", "2", "--steps", "300",
                "--views", "8", "--refiner-iterations", "750"]
    check.run(step, [_python(check), "-m", "splatfilm", "refine", str(SET_PLY), str(SET_PLY.parent.parent),
                     "--shots", str(FILM), "-o", str(out), *args], 120)
    lines = [ln for ln in step.output.splitlines() if ln.strip()]
    if step.status == "ok" and lines:
        step.result = lines[-1][-200:]


def bake() -> int:
    """The demo film's simulations, baked here where pybullet is (the GPU machine has none)."""
    sys.path.insert(0, str(REPO))
    from splatfilm.film.script import parse_film

    parse_film(FILM)
    cache = FILM.parent / ".splatfilm-cache"
    print(f"baked the demo's physics into {cache.relative_to(REPO)} ({len(list(cache.glob('physics-*.json')))} files)")
    # The crate collides with the set's mesh, cached beside the set (read there without open3d).
    meshes = sorted(p.relative_to(REPO) for p in SET_PLY.parent.glob(f"{SET_PLY.stem}.collision*"))
    print("carry as well: " + " ".join(str(p) for p in meshes))
    return 0


# ---- the report -----------------------------------------------------------------------------


def write_summary(check: Check, started: float) -> Path:
    env = check.steps[0].result if check.steps else ""
    gpu = re.search(r"gpu (.+?) \(", env)
    card = gpu.group(1) if gpu else ("CPU" if check.dry_run else "unknown")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    lines = [f"# splatfilm GPU check{' (dry run)' if check.dry_run else ''}: {card}",
             "", (f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                  f"{time.monotonic() - started:.0f} s in all"), "", f"environment: {env}", "",
             "| step | status | seconds | result |", "|---|---|---|---|"]
    for s in check.steps[1:]:
        lines.append(f"| {s.name} | {s.status} | {s.seconds:.0f} | {s.result.replace('|', '/')} |")
    lines += ["", f"## For benchmarks/README.md ({card}, commit {commit})", ""]
    for s in check.steps:
        for table in s.tables:
            lines += [f"{s.name}:", "", table, ""]
    path = check.out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    results = {"card": card, "commit": commit, "dry_run": check.dry_run,
               "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 1), "result": s.result}
                         for s in check.steps]}
    (check.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes, no install")
    parser.add_argument("--wheels", default=str(REPO / ".whl"), help="folder of wheels to install (default .whl)")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "out" / "gpu_check"),
                        help="output folder (default $OUT, else out/gpu_check)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole check (default 540; 300 for a dry run, which takes about 70 on 2 idle cores)")
    parser.add_argument("--only", metavar="STEPS",
                        help="after install and build, only these of tests,render,fit,film,refine,render-cpu "
                             "(a second call on the same machine reuses the build)")
    parser.add_argument("--bake", action="store_true", help="only bake the demo film's physics (needs pybullet)")
    args = parser.parse_args(argv)
    if args.bake:
        return bake()
    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - {"tests", "render", "fit", "film", "refine", "render-cpu"}
    if unknown:
        parser.error(f"--only: unknown step {min(unknown)!r}")
    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="splatfilm-gpu-check-"))
    budget = args.budget or (300.0 if args.dry_run else 540.0)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env["SPLATFILM_PYTHON"] = env.get("SPLATFILM_PYTHON", sys.executable)
    with open(out / "gpu_check.log", "w") as log:
        check = Check(out, work, args.dry_run, started + budget, log, env)
        check.say(f"splatfilm GPU check{' (dry run)' if args.dry_run else ''}: budget {budget:.0f} s, output {out}")
        try:
            step_environment(check)
            if args.dry_run:
                step_bake(check)
            installed = step_install(check, Path(args.wheels))
            gsplat_ok = installed and step_build(check)
            # Most wanted first: a step that finds too little time left is reported as not run.
            later = {"tests": lambda: step_tests(check, gsplat_ok), "render": lambda: step_render(check, gsplat_ok),
                     "fit": lambda: step_fit(check, gsplat_ok), "film": lambda: step_film(check, gsplat_ok),
                     "refine": lambda: step_refine(check, gsplat_ok)}
            if not args.dry_run:
                later["render-cpu"] = lambda: step_render_cpu(check)
            for name, run in later.items():
                if only is None or name in only:
                    run()
        finally:
            summary = write_summary(check, started)
            shutil.rmtree(work, ignore_errors=True)
    print(summary.read_text())
    passed = all(s.status in ("ok", "skipped") for s in check.steps)
    if args.dry_run:  # nothing is skipped in a dry run but the build, which needs CUDA
        passed = passed and all(s.status == "ok" for s in check.steps if s.name != "build")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
