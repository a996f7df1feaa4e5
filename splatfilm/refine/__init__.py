"""Diffusion refinement anchored to the 3D scene (`splatfilm refine`, `splatfilm render --refine`).

refiner.py: the Refiner interface and `load_refiner`; diffusion.py and scene_refiner.py: its
two backends; pairs.py: training pairs from a capture; distill.py: the progressive 3D update
that writes refined detail back into the Gaussians; gate.py: the gated post-render pass;
run.py: the `refine` command.
"""

from splatfilm.refine.refiner import Pair, Refiner, load_refiner

__all__ = ["Pair", "Refiner", "load_refiner"]
