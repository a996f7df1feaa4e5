"""Fit quality and speed on the bundled capture: PSNR/SSIM on held-out views and on the held-out
camera path (a shot the fit never saw), wall time, time per step, Gaussian count.

    python benchmarks/fit.py                                  # scenes/set, 3000 steps, cpu
    python benchmarks/fit.py --steps 30000 --backend gsplat   # on a GPU; also times a bare loop
    python benchmarks/fit.py --data DIR --renders OUT/        # a real capture (benchmarks/real_captures.py)
    python benchmarks/fit.py --profile                        # where a CPU fit step's time goes

On any capture it also prints a real-capture table: every 8th image held out (as 3DGS does),
PSNR/SSIM per held-out view, and, when the poses came from structure-from-motion, the SfM
summary and a per-image pose table read off the model (observations, reprojection error).
`--renders OUT` writes each held-out photo beside its render (photo | render) as PNGs.

With --bare (the default on a GPU) it also runs a bare gsplat training loop on the same
capture with the same recipe and step count (`bare_gsplat_fit`: gsplat.rasterization + Adam +
L1/SSIM + DefaultStrategy, as gsplat's examples/simple_trainer.py writes it) and prints both
side by side (goals: splatfilm's time per step within 1.1x the bare loop's, PSNR within
0.1 dB). On the CPU --bare rehearses that loop through a stand-in rasterizer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.fit import FitConfig, load_capture, run_fit  # noqa: E402
from splatfilm.fit.appearance import APPEARANCE_MODES  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.io.asset_files import appearance_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def bare_rasterization(device: torch.device):
    """`gsplat.rasterization` on CUDA. On the CPU (the GPU check's dry run) a stand-in with its
    signature and outputs, through splatfilm's cpu backend, so the bare loop's own code (the
    strategy, the optimisers, the evaluation) is rehearsed where gsplat cannot rasterize."""
    if device.type == "cuda":
        from gsplat import rasterization

        return rasterization

    from splatfilm.render import rasterization

    def stand_in(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, packed=False):
        g = Gaussians(means, quats, torch.log(scales), torch.logit(opacities), colors[:, :1], colors[:, 1:])
        out = rasterization(g, viewmats, Ks, width, height, backend="cpu", sh_degree=sh_degree)
        return out.rgb, out.alpha, out.info

    return stand_in


def bare_gsplat_fit(data: Path, steps: int, heldout: Path | None, max_size: int | None = None,
                    downscale: float | None = None) -> dict:
    """The same capture fitted by a bare gsplat training loop with splatfilm's recipe (the
    points, learning rates and their decay, loss, SH schedule, DefaultStrategy windows), written
    as gsplat's examples/simple_trainer.py writes it: parameters in a ParameterDict, one Adam a
    group, each step's image sent to the device, `gsplat.rasterization` called directly. It
    shares only loading and evaluation with splatfilm. Returns seconds per step (the loop
    alone), held-out PSNR/SSIM, held-out path PSNR/SSIM and the Gaussian count."""
    from gsplat.strategy import DefaultStrategy

    from splatfilm.fit.capture import scene_extent, split_indices
    from splatfilm.fit.init import gaussians_from_points
    from splatfilm.fit.trainer import adam_optimizers, densify_schedule, evaluate
    from splatfilm.render.metrics import ssim

    cfg = FitConfig()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rasterization = bare_rasterization(dev)
    work = Path(tempfile.mkdtemp())
    cap = load_capture(data, work, max_size=max_size, downscale=downscale)
    if cap.points is None:
        raise SystemExit(f"{data}: the bare loop starts from the capture's points and it has none")
    train, test = split_indices(len(cap), cfg.test_every)
    scene_scale = scene_extent(cap.cameras)[1] * 1.1
    torch.manual_seed(cfg.seed)
    g = gaussians_from_points(cap.points, cap.point_colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale)
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(getattr(g, k).to(dev)) for k in
                                     ("means", "quats", "scales", "opacities", "sh0", "shN")})
    opts = adam_optimizers(params, cfg, scene_scale)  # one Adam a group, splatfilm's rates and eps
    lr_means = opts["means"].param_groups[0]["lr"]
    gamma = 0.01 ** (1.0 / steps)
    strategy = DefaultStrategy(verbose=False, **densify_schedule(steps))
    strategy.check_sanity(params, opts)
    state = strategy.initialize_state(scene_scale=scene_scale)
    order = torch.Generator().manual_seed(cfg.seed)
    perm: list[int] = []
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for step in range(steps):
        if not perm:
            perm = [train[int(i)] for i in torch.randperm(len(train), generator=order)]
        i = perm.pop()
        vm, K = cap.cameras[i].to_tensors(device=dev)
        image = torch.from_numpy(cap.images[i]).to(dev).float() / 255
        for group in opts["means"].param_groups:
            group["lr"] = lr_means * gamma**step
        colors = torch.cat([params["sh0"], params["shN"]], 1)
        out, _, info = rasterization(params["means"], params["quats"], torch.exp(params["scales"]),
                                     torch.sigmoid(params["opacities"]), colors, vm, K, image.shape[1],
                                     image.shape[0], sh_degree=min(step // cfg.sh_degree_interval, cfg.sh_degree),
                                     packed=False)
        loss = (1 - cfg.ssim_lambda) * (out[0] - image).abs().mean() + cfg.ssim_lambda * (1 - ssim(out[0], image))
        strategy.step_pre_backward(params, opts, state, step, info)
        loss.backward()
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        strategy.step_post_backward(params, opts, state, step, info, packed=False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    final = Gaussians(**{k: v.detach().cpu() for k, v in params.items()})
    backend = "gsplat" if dev.type == "cuda" else "cpu"
    row = {"seconds_per_step": seconds / steps, "gaussians": len(final), "test": evaluate(final, cap, test, backend)}
    if heldout is not None and (heldout / "transforms.json").exists():
        path = load_capture(heldout, work / "eval", max_size=max_size, downscale=downscale)
        row["eval_data"] = evaluate(final, path, list(range(len(path))), backend)
    return row


def sfm_pose_table(model_dir: Path) -> list[dict]:
    """Per image of a COLMAP model: registered or not, 3D observations, mean and max
    reprojection error in pixels (recomputed from the model's points)."""
    import numpy as np
    import pycolmap

    rec = pycolmap.Reconstruction(str(model_dir))
    rows = []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        errs = []
        for p in image.points2D:
            if p.has_point3D():
                uv = image.project_point(rec.points3D[p.point3D_id].xyz)
                if uv is not None:
                    errs.append(float(np.linalg.norm(np.asarray(uv) - np.asarray(p.xy))))
        rows.append({"name": image.name, "registered": bool(image.has_pose), "observations": len(errs),
                     "mean_px": float(np.mean(errs)) if errs else float("nan"),
                     "max_px": float(np.max(errs)) if errs else float("nan")})
    return rows


def capture_report(data: Path, ply: Path, sidecar: dict, max_size: int | None, downscale: float | None,
                   renders: str | None) -> None:
    """The real-capture table: held-out views one by one (with the appearance each borrowed from
    its nearest training view when the fit has one, and as the plain scene), SfM summary and pose
    table when SfM made the poses, and (with `renders`) photo | render PNGs of the held-out views."""
    import numpy as np

    from splatfilm.fit.appearance import apply_transform, read_appearance
    from splatfilm.fit.capture import split_indices
    from splatfilm.fit.sfm import read_sfm_summary
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.io.images import write_png
    from splatfilm.render import rasterization
    from splatfilm.render.metrics import psnr, ssim
    from splatfilm.scene.cameras import sizes_text

    work = ply.with_suffix(".sfm")
    source = sidecar["source"]
    training = sidecar["training"]
    capture = load_capture(data, work, downscale=downscale, max_size=max_size)
    gaussians = load_gaussians(ply)
    train, test = split_indices(len(capture), training["test_every"])
    print(f"\nreal capture {data}: source {source['type']}, {len(capture)} images ({len(train)} train, "
          f"{len(test)} held out) at {sizes_text(capture.cameras.sizes)}, {training['steps']} steps, "
          f"{sidecar['num_gaussians']} Gaussians, {sidecar['timing']['seconds_per_step']:.3f} s/step")
    appearance_file = appearance_path(ply)
    borrowed = read_appearance(appearance_file) if appearance_file.exists() else None
    print("| held-out view | PSNR | SSIM | plain scene PSNR |" if borrowed else "| held-out view | PSNR | SSIM |")
    print("|---|---|---|---|" if borrowed else "|---|---|---|")
    out_dir = Path(renders) if renders else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for i in test:
            viewmats, Ks = capture.cameras[i].to_tensors()
            w, h = int(capture.cameras.widths[i]), int(capture.cameras.heights[i])
            plain = rasterization(gaussians, viewmats, Ks, w, h, backend=training["backend"]).rgb[0].cpu()
            pred = (apply_transform(plain, borrowed[capture.names[i]]) if borrowed else plain).clamp(0, 1)
            gt = torch.from_numpy(capture.images[i]).float() / 255
            mask = torch.from_numpy(capture.valid[i]).float() if capture.valid is not None else None
            name = Path(capture.names[i]).name
            row = f"| {name} | {float(psnr(pred, gt, mask)):.2f} | {float(ssim(pred, gt)):.4f} |"
            print(row + (f" {float(psnr(plain.clamp(0, 1), gt, mask)):.2f} |" if borrowed else ""))
            if out_dir:
                write_png(out_dir / f"{Path(name).stem}.png", np.concatenate([gt.numpy(), pred.numpy()], 1))
    model = source.get("sfm_model")
    if model:
        summary = read_sfm_summary(work)
        if summary is not None:
            print(f"SfM: registered {summary.registered}/{summary.images} images ({summary.mapper} mapping), "
                  f"{summary.kept} kept, {summary.points} points, {summary.features:.0f} features an image, "
                  f"{summary.verified_pairs}/{summary.pairs} pairs verified, {summary.seconds:.0f} s")
        rows = sfm_pose_table(Path(model))
        # The model lists only the images it registered; the others are what SfM dropped.
        from splatfilm.io.photos import list_images

        known = {r["name"] for r in rows}
        rows += [{"name": p.name, "registered": False, "observations": 0, "mean_px": float("nan"),
                  "max_px": float("nan")} for p in list_images(source["path"]) if p.name not in known]
        print("| image | registered | observations | mean reproj px | max reproj px |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['name']} | {'yes' if r['registered'] else 'no'} | {r['observations']} | "
                  f"{r['mean_px']:.2f} | {r['max_px']:.2f} |")

def profile_steps(data: Path, sizes: str, resolutions: str, steps: int) -> None:
    """Print a table: seconds per fit step, split by phase, for each Gaussian count and size."""
    import os
    import platform

    import numba

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads); load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print("| Gaussians | resolution | steps | render fwd s | loss s | backward s | optimiser s | strategy s | step s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes.split(","):
        n = int(float(size[:-1]) * 1000) if size.lower().endswith("k") else int(size)
        for res in resolutions.split(","):
            w, h = (int(v) for v in res.split("x"))
            k = steps if n * w * h <= 100_000 * 640 * 360 else max(2, steps // 3)
            t = profile_row(data, n, w, h, k)
            print(f"| {n // 1000}k | {w}x{h} | {k} | {t['render']:.3f} | {t['loss']:.3f} | {t['backward']:.3f} | "
                  f"{t['optimiser']:.3f} | {t['strategy']:.3f} | {sum(t.values()):.3f} |", flush=True)


def profile_row(data: Path, n: int, width: int, height: int, steps: int, warmup: int = 2) -> dict:
    """Mean seconds per phase over `steps` fit steps (after `warmup`), the trainer's recipe as
    it runs its first steps: SH degree 0, Adam with its learning rates, DefaultStrategy
    gathering gradient statistics (densification starts later), L1 + 0.2 D-SSIM. The
    Gaussians: an init of n around the capture's SfM points (benchmarks/render.py's init
    scene); the capture's images and cameras resized to width x height."""
    import numpy as np
    from gsplat.strategy import DefaultStrategy

    from splatfilm.fit import FitConfig
    from splatfilm.fit.trainer import PARAM_NAMES, adam_optimizers, densify_schedule
    from splatfilm.render import rasterization
    from splatfilm.render.metrics import ssim

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rasterization import make_init_scene  # benchmarks/render.py

    cap = load_capture(data, Path(tempfile.mkdtemp()))
    cams = cap.cameras.resized(width, height)
    images = [torch.nn.functional.interpolate(torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255, (height, width),
                                              mode="bilinear", antialias=True)[0].permute(1, 2, 0).contiguous()
              for im in cap.images[:8]]
    g = make_init_scene(n)
    cfg = FitConfig()
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(getattr(g, k).clone()) for k in PARAM_NAMES})
    opts = adam_optimizers(params, cfg, scene_scale=1.0)
    strategy = DefaultStrategy(verbose=False, **densify_schedule(30000))
    state = strategy.initialize_state(scene_scale=1.0)
    totals = dict.fromkeys(("render", "loss", "backward", "optimiser", "strategy"), 0.0)
    rng = np.random.default_rng(0)
    for step in range(warmup + steps):
        i = int(rng.integers(len(images)))
        vm, K = cams[i].to_tensors()
        t0 = time.perf_counter()
        out = rasterization(Gaussians(**{k: params[k] for k in PARAM_NAMES}), vm, K, width, height, backend="cpu",
                            sh_degree=0)
        t1 = time.perf_counter()
        pred = out.rgb[0]
        loss = 0.8 * (pred - images[i]).abs().mean() + 0.2 * (1 - ssim(pred, images[i]))
        t2 = time.perf_counter()
        strategy.step_pre_backward(params, opts, state, step, out.info)
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        for o in opts.values():
            o.step()
            o.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        strategy.step_post_backward(params, opts, state, step, out.info, packed=False)
        t6 = time.perf_counter()
        if step >= warmup:
            for key, dt in (("render", t1 - t0), ("loss", t2 - t1), ("backward", t4 - t3), ("optimiser", t5 - t4),
                            ("strategy", t3 - t2 + t6 - t5)):
                totals[key] += dt
    return {k: v / steps for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "scenes" / "set"))
    parser.add_argument("--heldout", default=None, help="held-out camera path capture (default DATA/heldout)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--max-size", type=int, default=None)
    parser.add_argument("--downscale", type=float, default=None, help="as `splatfilm fit --downscale`")
    parser.add_argument("--renders", default=None, help="write held-out photo | render PNGs here")
    parser.add_argument("--out", default=None, help="where to keep the fitted PLY (default: a temp folder)")
    parser.add_argument("--appearance", default="auto", choices=APPEARANCE_MODES,
                        help="as `splatfilm fit --appearance` (auto: on for photos)")
    parser.add_argument("--bare", action=argparse.BooleanOptionalAction, default=None,
                        help="also fit with a bare gsplat loop (default: on with --backend gsplat)")
    parser.add_argument("--profile", action="store_true",
                        help="time fit steps split into render forward, loss, backward, optimiser, strategy")
    parser.add_argument("--profile-sizes", default="100k,500k")
    parser.add_argument("--profile-resolutions", default="320x240,640x360")
    parser.add_argument("--profile-steps", type=int, default=10, help="timed steps per row (fewer for 500k at 640x360)")
    args = parser.parse_args()
    if args.profile:
        profile_steps(Path(args.data), args.profile_sizes, args.profile_resolutions, args.profile_steps)
        return

    data = Path(args.data)
    heldout = Path(args.heldout) if args.heldout else data / "heldout"
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    cfg = FitConfig(steps=args.steps, backend=args.backend, checkpoint_every=0, appearance=args.appearance)
    t0 = time.perf_counter()
    sidecar = run_fit(data, out_dir / "fit.ply", cfg, max_size=args.max_size, downscale=args.downscale,
                      eval_data=heldout if (heldout / "transforms.json").exists() else None)
    wall = time.perf_counter() - t0
    m = sidecar["metrics"]
    print(f"data {data}, {args.steps} steps, backend {args.backend}")
    print("| held-out views PSNR | SSIM | held-out path PSNR | SSIM | Gaussians | fit s | s/step | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    path = m.get("eval_data", {})
    print(f"| {m['test']['psnr']:.2f} | {m['test']['ssim']:.4f} | {path.get('psnr', float('nan')):.2f} | "
          f"{path.get('ssim', float('nan')):.4f} | {sidecar['num_gaussians']} | {sidecar['timing']['seconds']:.0f} | "
          f"{sidecar['timing']['seconds_per_step']:.3f} | {wall:.0f} |")
    bare = None
    if args.bare or (args.bare is None and args.backend == "gsplat"):
        bare = bare_gsplat_fit(data, args.steps, heldout, args.max_size, args.downscale)
        ours = sidecar["timing"]["seconds_per_step"]
        bp = bare.get("eval_data", {})
        print(f"\nsplatfilm against a bare gsplat loop, same recipe, {args.steps} steps "
              "(goals: s/step <= 1.1x, PSNR within 0.1 dB)")
        print("| loop | s/step | held-out views PSNR | SSIM | held-out path PSNR | Gaussians |")
        print("|---|---|---|---|---|---|")
        print(f"| splatfilm fit | {ours:.4f} | {m['test']['psnr']:.2f} | {m['test']['ssim']:.4f} | "
              f"{path.get('psnr', float('nan')):.2f} | {sidecar['num_gaussians']} |")
        label = "bare gsplat" if torch.cuda.is_available() else "bare loop, cpu stand-in"
        print(f"| {label} | {bare['seconds_per_step']:.4f} | {bare['test']['psnr']:.2f} | {bare['test']['ssim']:.4f} | "
              f"{bp.get('psnr', float('nan')):.2f} | {bare['gaussians']} |")
        print(f"time per step {ours / bare['seconds_per_step']:.2f}x the bare loop's; held-out PSNR "
              f"{m['test']['psnr'] - bare['test']['psnr']:+.2f} dB")
    capture_report(data, out_dir / "fit.ply", sidecar, args.max_size, args.downscale, args.renders)
    print(json.dumps({"metrics": m, "num_gaussians": sidecar["num_gaussians"], "timing": sidecar["timing"],
                      "bare": bare}))


if __name__ == "__main__":
    main()
