"""The `Refiner` interface: a batch of rendered frames in, the same frames with detail restored out.

A refiner is deterministic: one input gives one output, bit for bit, on one machine.
Two backends implement it (each imports this module, never the loader):
- `DiffusionRefiner` (diffusion.py): a pretrained single-step diffusion img2img model (an
  sd-turbo-class pipeline or a Difix-style fixer) loaded with diffusers from a local folder;
- `SceneRefiner` (scene_refiner.py): a compact conditional UNet splatfilm trains per scene
  on pairs made from the scene's own capture (pairs.py).

`refine.loader.load_refiner(path)` picks the backend from what the folder holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from splatfilm.errors import SplatfilmError


@runtime_checkable
class Refiner(Protocol):
    """images [B,H,W,3] float32 in [0,1] (rendered frames, linear display RGB as rendered);
    reference [B,H,W,3] in [0,1] or None: per frame a view that shows the truth where it is
    valid, already reprojected into the frame (the nearest capture photo, or the previous
    refined frame) through rendered depth and the known cameras; reference_mask [B,H,W,1] in
    {0,1}: where the reference is valid (co-visible, not occluded); depth [B,H,W,1] camera z
    in scene units, or None. Returns the refined batch [B,H,W,3] in [0,1] on the images'
    device. Backends that cannot use the reference or depth ignore them (and say so in their
    docstring)."""

    name: str

    def refine(self, images: torch.Tensor, reference: torch.Tensor | None = None,
               reference_mask: torch.Tensor | None = None, depth: torch.Tensor | None = None) -> torch.Tensor:
        """The refined batch [B,H,W,3] in [0,1] (shapes and units in the class docstring)."""
        ...


@dataclass
class Pair:
    """One training example for a per-scene refiner: a degraded render of a capture view and
    the real photo of that view. render, target [H,W,3] float32 in [0,1]; reference [H,W,3]
    and reference_mask [H,W,1] as in `Refiner.refine` (zeros where no reference); kind says
    how the render was degraded (heldout, undertrained, lowres, final) for reports."""

    render: torch.Tensor
    target: torch.Tensor
    reference: torch.Tensor
    reference_mask: torch.Tensor
    kind: str = ""
    name: str = ""


def check_batch(images: torch.Tensor, what: str = "images") -> None:
    """A one-line error unless images is [B,H,W,3] floating point."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[-1] != 3 or not images.is_floating_point():
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise SplatfilmError(f"refine: {what} must be a float tensor [B,H,W,3], got {shape}")
