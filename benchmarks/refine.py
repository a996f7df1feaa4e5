"""Refinement that keeps shots consistent: raw vs per-frame refined vs 3D-distilled renders.

    python benchmarks/refine.py                  # the bundled set, every 4th view (12 of 48)
    python benchmarks/refine.py --every 6 --fit-steps 1500
    python benchmarks/refine.py --refiner ~/models/sd-turbo  # a downloaded pretrained refiner (GPU)

A sparse subset of the bundled capture (`scenes/set`) is fitted, so the scene shows the
artefacts of thin coverage; `splatfilm refine` then trains a per-scene refiner on pairs
made from those same sparse photos and distils its output back into the Gaussians along the
held-out camera path (`scenes/set/heldout`: 30 frames the fit never saw, with Mitsuba ground
truth that nothing but this evaluation reads). Rows, on that path:

(a) raw: renders of the sparse fit;
(b) per-frame: each raw frame refined on its own (reference: the nearest photos reprojected);
(c) 3D-distilled: renders of the refined scene;
(d) distilled + gated: (c) through the gated post-render pass;
control: the same progressive update with the identity refiner (pseudo-views are the raw
renders), which separates what the refiner adds from what the extra optimisation does.

Columns: PSNR / SSIM against ground truth; E_warp between consecutive frames and between
frames 10 apart (a stand-in for a cut between two shots of the same set), x 1e-3 ([0,1]
units; lower is better). Depth for E_warp is the rendered depth of the row's scene.
Targets: (c) and (d) at least +0.5 dB over (a); their E_warp within 5% of (a)'s.
A second table checks the refiner's training pairs: per kind, PSNR of the render before and
after refining, and of the render and of the reprojected reference photo inside the
reference mask (a reference scoring below the render there gives the net nothing to copy).
A third bounds what any reference-based refiner could take from the photos on the held-out
path: the reference re-aligned by patch matching, and by an oracle that matches against the
ground truth, both inside the mask, against the render there and outside it.
A strip of frames (ground truth, a, b, c, d) is written to WORK/refine_strip.png, and one
training pair of each kind to WORK/refiner_pairs.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.render.consistency import warp_error  # noqa: E402
from splatfilm.fit import FitConfig, load_capture, run_fit  # noqa: E402
from splatfilm.io.images import write_png  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians  # noqa: E402
from splatfilm.render.metrics import psnr, ssim  # noqa: E402
from splatfilm.render import resolve_backend  # noqa: E402
from splatfilm.refine.distill import DistillConfig  # noqa: E402
from splatfilm.refine.gate import Frame, GateConfig, gated_refine  # noqa: E402
from splatfilm.io.camera_files import read_cameras  # noqa: E402
from splatfilm.refine.loader import load_refiner  # noqa: E402
from splatfilm.refine.pairs import PairConfig, capture_photos, reference_view, render_depths, render_view  # noqa: E402
from splatfilm.refine.run import load_pairs, run_refine  # noqa: E402
from splatfilm.refine.scene_refiner import SceneRefiner, SceneRefinerConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "scenes" / "set"


def sparse_capture(folder: Path, every: int) -> Path:
    """A nerfstudio folder listing every `every`-th view of the bundled set (images by absolute path)."""
    tf = json.loads((SET / "transforms.json").read_text())
    tf["frames"] = tf["frames"][::every]
    for f in tf["frames"]:
        f["file_path"] = str((SET / f["file_path"]).resolve())
    if "ply_file_path" in tf:
        tf["ply_file_path"] = str((SET / tf["ply_file_path"]).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transforms.json").write_text(json.dumps(tf, indent=1))
    return folder


def frames_of(g, cams, backend) -> list[Frame]:
    out = []
    for i in range(len(cams)):
        v = render_view(g, cams[i], backend)
        out.append(Frame(v.rgb, v.depth, v.alpha, cams[i]))
    return out


def e_warp(rgbs, frames, gap: int) -> float:
    es = []
    for i in range(len(frames) - gap):
        a, b = frames[i + gap], frames[i]
        e = warp_error(rgbs[i + gap], a.depth, a.camera, rgbs[i], b.depth, b.camera, alpha_a=a.alpha).e_warp
        if np.isfinite(e):
            es.append(e)
    return float(np.mean(es)) * 1e3


def quality(rgbs, gts) -> tuple[float, float]:
    ps = [float(psnr(r.clamp(0, 1), g)) for r, g in zip(rgbs, gts)]
    ss = [float(ssim(r.clamp(0, 1), g)) for r, g in zip(rgbs, gts)]
    return float(np.mean(ps)), float(np.mean(ss))


def shift_align(ref: torch.Tensor, target: torch.Tensor, radius: int = 8, patch: int = 5) -> torch.Tensor:
    """`ref` [H,W,3] re-sampled so that each pixel takes the value at the offset (within
    +-radius px) whose patch x patch neighbourhood best matches `target` (least squares)."""
    h, w = ref.shape[:2]
    padded = F.pad(ref.permute(2, 0, 1)[None], (radius,) * 4, mode="replicate")[0].permute(1, 2, 0)
    best = torch.full((h, w), float("inf"))
    out = ref.clone()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            s = padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            d = F.avg_pool2d(((s - target) ** 2).mean(-1)[None, None], patch, 1, patch // 2,
                             count_include_pad=False)[0, 0]
            better = d < best
            best = torch.where(better, d, best)
            out[better] = s[better]
    return out


def reference_bound(frames: list[Frame], refs: list[tuple[torch.Tensor, torch.Tensor]], gts) -> None:
    """How much the reference photos could give at best on the held-out path: inside the
    reference mask, the render against the reference as reprojected, re-aligned by patch
    matching against the render (what a matcher could do), re-aligned against the ground truth
    (an oracle no refiner has), and the oracle-aligned reference blended with the render at
    the best weight per frame (again chosen with the ground truth)."""
    cols = {k: [] for k in ("mask", "render", "outside", "ref", "matched", "oracle", "blend")}
    for f, (ref, mask), gt in zip(frames, refs, gts):
        m = mask[..., 0] > 0
        oracle = shift_align(ref, gt)
        d, e = (oracle - f.rgb)[m], (gt - f.rgb)[m]
        alpha = float(((d * e).sum() / (d * d).sum().clamp_min(1e-12)).clamp(0, 1))
        cols["mask"].append(float(m.float().mean()))
        cols["render"].append(float(psnr(f.rgb, gt, mask)))
        cols["outside"].append(float(psnr(f.rgb, gt, 1 - mask)))
        cols["ref"].append(float(psnr(ref, gt, mask)))
        cols["matched"].append(float(psnr(shift_align(ref, f.rgb), gt, mask)))
        cols["oracle"].append(float(psnr(oracle, gt, mask)))
        cols["blend"].append(float(psnr((1 - alpha) * f.rgb + alpha * oracle, gt, mask)))
    mean = {k: float(np.mean(v)) for k, v in cols.items()}
    print("\nreference photos on the held-out path (PSNR dB against ground truth; (a)'s renders):")
    print("| mask fraction | render outside mask | render in mask | reference in mask | matched to render (+-8 px) "
          "| oracle-aligned (+-8 px) | oracle blend with render |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {mean['mask']:.2f} | {mean['outside']:.2f} | {mean['render']:.2f} | {mean['ref']:.2f} | "
          f"{mean['matched']:.2f} | {mean['oracle']:.2f} | {mean['blend']:.2f} |")


def pair_report(refiner_dir: Path, strip: Path) -> None:
    """Per kind of training pair: the render's and the reprojected reference's PSNR against the
    photo inside the reference mask, i.e. whether the reference could tell the net anything.
    `strip`: a PNG of up to four pairs (render, photo, reference inside its mask, 3 x |reference
    - photo| there), one pair of each kind first."""
    cache = max(refiner_dir.glob("pairs.*.npz"), key=lambda f: f.stat().st_mtime, default=None)
    pairs = load_pairs(cache) if cache else None  # the newest: the pairs the refiner was trained on
    if not pairs:
        return
    kinds = list(dict.fromkeys(p.kind for p in pairs))
    stats = json.loads((refiner_dir / "refiner.json").read_text()).get("stats", {}).get("by_kind", {})
    print("\n| pair kind | pairs | render PSNR | refined PSNR | mask fraction | render in mask | reference in mask |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        ps = [p for p in pairs if p.kind == kind]
        mean = lambda f: float(np.mean([f(p) for p in ps]))  # noqa: E731
        ins = mean(lambda p: float(psnr(p.render, p.target, p.reference_mask)))
        ref = mean(lambda p: float(psnr(p.reference, p.target, p.reference_mask)))
        s = stats.get(kind, {})
        print(f"| {kind} | {len(ps)} | {s.get('psnr_input', float('nan')):.2f} | {s.get('psnr_output', float('nan')):.2f} | "
              f"{mean(lambda p: float(p.reference_mask.mean())):.2f} | {ins:.2f} | {ref:.2f} |")
    firsts = [next(p for p in pairs if p.kind == k) for k in kinds]
    shown = [p for p in firsts if p.render.shape == firsts[0].render.shape][:4]
    rows = [torch.cat([p.render, p.target, p.reference * p.reference_mask,
                       ((p.reference - p.target).abs() * 3 * p.reference_mask)], dim=1).clamp(0, 1) for p in shown]
    write_png(strip, torch.cat(rows, dim=0).numpy())
    print(f"pairs ({', '.join(p.kind for p in shown)}; columns: render, photo, reference in its mask, "
          f"3 x |reference - photo|): {strip}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "out" / "refine"))
    ap.add_argument("--every", type=int, default=4, help="keep every n-th capture view (default 4: 12 of 48)")
    ap.add_argument("--fit-steps", type=int, default=2000)
    ap.add_argument("--pair-steps", type=int, default=800, help="steps of each fold / low-res fit for refiner pairs")
    ap.add_argument("--refiner-iterations", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--distill-steps", type=int, default=400)
    ap.add_argument("--views", type=int, default=12, help="pseudo-views per round")
    ap.add_argument("--pseudo-weight", type=float, default=0.5)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--refiner", metavar="FOLDER", help="a local refiner folder (a diffusers sd-turbo-class or Difix "
                    "checkpoint, or a trained per-scene refiner) instead of training a per-scene one")
    args = ap.parse_args()

    work = Path(args.work)
    t0 = time.perf_counter()
    data = sparse_capture(work / "sparse", args.every)
    raw_ply = work / "sparse.ply"
    if not raw_ply.exists():
        run_fit(data, raw_ply, FitConfig(steps=args.fit_steps, backend=args.backend, sh_degree=1, test_every=0))
    t_fit = time.perf_counter() - t0

    t1 = time.perf_counter()
    train_cfg = SceneRefinerConfig()
    if args.refiner_iterations:
        train_cfg.iterations = args.refiner_iterations
    dcfg = DistillConfig(rounds=args.rounds, steps=args.distill_steps, views=args.views,
                         pseudo_weight=args.pseudo_weight, backend=args.backend)
    # A given refiner gets its own output, so its rows never mix with the per-scene refiner's.
    refined_ply = work / ("refined.ply" if not args.refiner else f"refined-{Path(args.refiner).name}.ply")
    heldout_cameras = SET / "heldout" / "transforms.json"
    targets = read_cameras(heldout_cameras)
    run_refine(raw_ply, data, refined_ply, targets, heldout_cameras, refiner=args.refiner,
               pair_cfg=PairConfig(steps=args.pair_steps, backend=args.backend), train_cfg=train_cfg,
               distill_cfg=dcfg)
    t_refine = time.perf_counter() - t1
    backend = resolve_backend(dcfg.backend)
    refiner = load_refiner(args.refiner or refined_ply.with_suffix(".refine") / "refiner",
                           device="cuda" if backend == "gsplat" else "cpu")
    control_ply = work / "control.ply"
    if not control_ply.exists():
        identity = SceneRefiner.untrained()
        identity.save(work / "identity-refiner")
        run_refine(raw_ply, data, control_ply, targets, heldout_cameras, refiner=work / "identity-refiner",
                   distill_cfg=dcfg)

    # Evaluation on the held-out path: its photos are read only here.
    path = load_capture(SET / "heldout", work / "heldout-work")
    capture = load_capture(data, work / "capture-work")
    gts = capture_photos(path)
    raw_g, ref_g, ctl_g = load_gaussians(raw_ply), load_gaussians(refined_ply), load_gaussians(control_ply)
    cams = path.cameras
    fa, fc, f0 = frames_of(raw_g, cams, backend), frames_of(ref_g, cams, backend), frames_of(ctl_g, cams, backend)

    ids = list(range(len(capture)))
    photos = capture_photos(capture)
    depths = render_depths(raw_g, capture.cameras, ids, backend)
    t2 = time.perf_counter()
    per_frame, refs = [], []
    for i, f in enumerate(fa):
        ref, mask = reference_view(photos, capture.cameras, depths, cams[i], f, ids)  # a Frame has rgb, depth, alpha
        refs.append((ref, mask))
        per_frame.append(refiner.refine(f.rgb[None], ref[None], mask[None], f.depth[None])[0])
    t_per_frame = (time.perf_counter() - t2) / len(fa)
    t3 = time.perf_counter()
    gate = gated_refine(fc, len(fc), refiner, GateConfig())
    t_gate = (time.perf_counter() - t3) / len(fc)

    rows = [("(a) raw", [f.rgb for f in fa], fa), ("(b) per-frame refine", per_frame, fa),
            ("(c) 3D-distilled", [f.rgb for f in fc], fc), ("(d) distilled + gated", gate.outputs, fc),
            ("control: identity refiner, same update", [f.rgb for f in f0], f0)]
    results = []
    for name, rgbs, frames in rows:
        p, s = quality(rgbs, gts)
        results.append((name, p, s, e_warp(rgbs, frames, 1), e_warp(rgbs, frames, 10)))
    base = results[0]
    print(f"\nsparse capture: {len(capture)} of 48 views; held-out path: {len(cams)} frames; backend {backend}")
    print(f"fit {t_fit:.0f} s, refine (pairs + refiner + distillation) {t_refine:.0f} s; per-frame refine "
          f"{t_per_frame:.2f} s/frame, gated pass {t_gate:.2f} s/frame; gate rejected {gate.rejected} of {len(fc)}\n")
    print("| row | PSNR dB | dPSNR | SSIM | E_warp consecutive (1e-3) | vs (a) | E_warp 10 apart (1e-3) | vs (a) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p, s, e1, e10 in results:
        print(f"| {name} | {p:.2f} | {p - base[1]:+.2f} | {s:.4f} | {e1:.3f} | {e1 / base[3] - 1:+.1%} | "
              f"{e10:.3f} | {e10 / base[4] - 1:+.1%} |")
    for name, p, s, e1, e10 in results[2:4]:
        ok = p - base[1] >= 0.5 and e1 <= base[3] * 1.05
        print(f"target {name}: +0.5 dB and E_warp within 5% of (a): {'met' if ok else 'NOT met'}")

    if not args.refiner:
        pair_report(refined_ply.with_suffix(".refine") / "refiner", work / "refiner_pairs.png")
    reference_bound(fa, refs, gts)

    picks = [0, len(cams) // 2, len(cams) - 1]
    strip_rows = []
    for i in picks:
        tiles = [gts[i]] + [r[1][i] for r in rows[:4]]
        strip_rows.append(torch.cat([t.clamp(0, 1) for t in tiles], dim=1))
    strip = torch.cat(strip_rows, dim=0).numpy()
    strip_png = work / ("refine_strip.png" if not args.refiner else f"refine_strip-{Path(args.refiner).name}.png")
    write_png(strip_png, strip)
    print(f"\nstrip (columns: ground truth, a, b, c, d; rows: frames {picks}): {strip_png}")


if __name__ == "__main__":
    main()
