"""Fitting on the gsplat backend through a lens, on a CUDA machine (the GPU check runs it).

Skipped where CUDA is not available (CI). A fisheye capture trains through gsplat's own
fisheye model; a distorted one through its 3DGUT path, whose 2D means carry no gradient, so
the default strategy is refused before any work and the other strategies train.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_lens_capture, small_cfg

from splatfilm.errors import SplatfilmError
from splatfilm.fit import Capture, load_capture, run_fit
from splatfilm.fit.trainer import fit
from splatfilm.io.images import to_uint8
from splatfilm.render import rasterization
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for gsplat"),
]


def _nudged_grey(gs: Gaussians) -> Gaussians:
    """The true Gaussians moved a little and greyed out: a fit must learn the colours back."""
    nudge = 0.02 * torch.randn(gs.means.shape, generator=torch.Generator().manual_seed(1))
    return Gaussians(gs.means + nudge, gs.quats, gs.scales, gs.opacities, torch.zeros_like(gs.sh0),
                     torch.zeros_like(gs.shN))


def test_a_distorted_fisheye_trains_on_gsplat_and_the_default_strategy_is_refused(tmp_path):
    pytest.importorskip("gsplat")
    folder, gs = make_lens_capture(tmp_path / "cap", "OPENCV_FISHEYE")
    cap = load_capture(folder, tmp_path / "w")
    with pytest.raises(SplatfilmError, match="3DGUT"):
        fit(cap, small_cfg(backend="gsplat", steps=24), progress=False)
    cfg = small_cfg(backend="gsplat", steps=24, test_every=4, strategy="none", lr_sh0=0.05, sh_degree_interval=0)
    res = fit(cap, cfg, init=_nudged_grey(gs), progress=False)
    losses = [h["loss"] for h in res.history]
    print(f"\ndistorted fisheye on gsplat (3DGUT): loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
          f"held-out PSNR {res.metrics['test']['psnr']:.2f} dB")
    assert losses[-1] < 0.6 * losses[0], losses
    assert res.metrics["test"]["psnr"] > 20.0, res.metrics


def test_an_undistorted_fisheye_fits_end_to_end_on_gsplat(tmp_path):
    """gsplat's EWA fisheye gives its 2D means gradients: the default strategy densifies. And
    a distorted capture runs end to end with MCMC."""
    pytest.importorskip("gsplat")
    folder, gs = make_lens_capture(tmp_path / "cap", "OPENCV_FISHEYE")
    cap = undistorted_fisheye(load_capture(folder, tmp_path / "w"), gs)
    on = {b: fit(cap, small_cfg(backend=b, steps=300, test_every=4), progress=False) for b in ("gsplat", "cpu")}
    psnr = {b: r.metrics["test"]["psnr"] for b, r in on.items()}
    print(f"\nundistorted fisheye, 300 steps from points: held-out PSNR gsplat {psnr['gsplat']:.2f} dB "
          f"({len(on['gsplat'].gaussians)} Gaussians), cpu {psnr['cpu']:.2f} dB ({len(on['cpu'].gaussians)})")
    # The cpu backend reached 16.97 dB here (dev machine, 2026-11-28): the same maths, so close.
    assert abs(psnr["gsplat"] - psnr["cpu"]) < 1.5 and len(on["gsplat"].gaussians) > len(gs), psnr
    sidecar = run_fit(folder, tmp_path / "a.ply", small_cfg(backend="gsplat", steps=12, test_every=4, strategy="mcmc"),
                      progress=False)
    assert sidecar["metrics"]["test"]["views"] == 2


def undistorted_fisheye(cap: Capture, gs: Gaussians) -> Capture:
    """`cap`'s cameras without their distortion, and its plates rendered again through them."""
    cams = Cameras(cap.cameras.viewmats, cap.cameras.Ks, cap.cameras.widths, cap.cameras.heights,
                   np.zeros((len(cap), 6)), "OPENCV_FISHEYE", cap.names)
    images = []
    for i in range(len(cap)):
        rgb = rasterization(gs, **cams[i].render_arguments(), backend="cpu")
        images.append(to_uint8(rgb.rgb[0].numpy()))
    return Capture(cams, images, cap.names)
