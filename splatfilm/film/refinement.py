"""`render --refine`: the film's frames through the gated post-render pass (refine/gate.py).

A refined frame takes the frame before it (as written) as its reference, so each shot is
refined in order, in this process, from its first frame to do to its end.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from splatfilm import report
from splatfilm.film.frame_render import FrameJob, FrameRenderer
from splatfilm.io.digest import content_digest
from splatfilm.io.images import read_image
from splatfilm.refine.gate import GATE_RULE, Frame, GateConfig, gated_refine
from splatfilm.refine.loader import load_refiner, refiner_digest
from splatfilm.refine.refiner import Refiner

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass
class Refinement:
    """A refiner and its gate. identity: what of them a refined frame's key covers (the
    refiner folder's digest, its prompt, the gate's rule and settings)."""

    refiner: Refiner
    gate: GateConfig
    identity: str

    @classmethod
    def load(cls, folder: str | Path, tolerance: float, backend: str, prompt: str = "") -> Refinement:
        """The refiner in `folder` (`refine.loader.load_refiner`) gated at `tolerance` (the
        share of its detail that may change from frame to frame, `GateConfig`); backend: the
        resolved render backend; prompt: a diffusion refiner's text prompt."""
        gate = GateConfig(tolerance=tolerance)  # checked before the (slow) refiner loads
        # The refiner runs where the renders do, so a forced --backend cpu stays on the CPU.
        refiner = load_refiner(folder, device="cuda" if backend == "gsplat" else "cpu", prompt=prompt)
        ident = [refiner_digest(Path(folder)), GATE_RULE, dataclasses.asdict(gate), prompt]
        return cls(refiner, gate, json.dumps(ident))

    def chain_key(self, key: str, previous: str | None) -> str:
        """The key of a refined frame whose raw render has `key` and whose shot's previous
        frame has the key `previous` (None for a shot's first frame): a refined frame depends
        on every frame before it in its shot, through its reference."""
        return content_digest([key, self.identity, previous or ""])


def refine_shots(renderer: FrameRenderer, out_dir: Path, jobs: list[FrameJob], refinement: Refinement,
                 done: Callable[[FrameJob, bool], None], bar: tqdm) -> None:
    """Render and refine `jobs`, shot by shot, each shot from its first job to its end (a
    refined frame depends on the ones before it, so every later frame is in `jobs` too). The
    frame before the first job is rendered again as the reference and its written PNG read
    back. done(job, accepted) as each frame is written; bar: a tqdm bar, one step a frame."""
    film = renderer.film
    by_shot: dict[int, dict[int, FrameJob]] = {}
    for job in jobs:
        by_shot.setdefault(job.shot_index, {})[job.frame_index] = job
    for k, todo in by_shot.items():
        fs = film.shots[k]
        start = min(todo)
        prev_png = read_image(renderer.job(out_dir, k, start - 1, "").png)[..., :3] if start > 0 else None
        prev_out = torch.from_numpy(prev_png.astype(np.float32) / 255) if prev_png is not None else None
        cache: dict[int, Frame] = {}

        def frame(i: int, fs=fs, cache=cache) -> Frame:
            if i not in cache:
                for old in [j for j in cache if j < i - 2]:  # the pass looks back one frame, ahead one
                    del cache[old]
                rgb, alpha, depth = renderer.render(fs, i)
                cam = renderer.camera(fs, i)
                cache[i] = Frame(torch.from_numpy(rgb).float(), torch.from_numpy(depth).float(),
                                 torch.from_numpy(alpha).float(), cam)
            return cache[i]

        def write(i: int, rgb: torch.Tensor, ok: bool, todo=todo) -> None:
            f = frame(i)
            renderer.write(todo[i], rgb.double().numpy(), f.alpha.double().numpy(), f.depth.double().numpy(),
                           refined=ok)
            done(todo[i], ok)
            bar.update(1)

        bar.set_description(f"film {fs.name} (refine)")
        res = gated_refine(frame, len(fs.shot.frame_numbers), refinement.refiner, refinement.gate, start=start,
                           previous_output=prev_out, on_frame=write)
        report.status(f"{fs.name}: refine kept {len(res.accepted) - res.rejected} of {len(res.accepted)} refined "
                      f"frame(s); {res.rejected} rejected by the consistency gate (raw frame kept)")
