"""Diffusion refinement anchored to the 3D scene (`splatfilm refine`, `splatfilm render --refine`).

refiner.py: the Refiner interface; loader.py: `load_refiner`; diffusion.py and scene_refiner.py: its
two backends; pairs.py: training pairs from a capture; distill.py: the progressive 3D update
that writes refined detail back into the Gaussians; gate.py: the gated post-render pass;
run.py: the `refine` command.
"""

from splatfilm.refine.loader import load_refiner
from splatfilm.refine.refiner import Pair, Refiner

__all__ = ["Pair", "Refiner", "load_refiner"]
