"""3D Gaussians in the parameterisation of 3D Gaussian Splatting and gsplat.

Stored (raw) parameters, as optimisers and PLY files hold them:
    means      [N, 3]  world position
    quats      [N, 4]  rotation (w, x, y, z), normalised at use
    scales     [N, 3]  log of the standard deviations along the local axes
    opacities  [N]     logit of opacity
    sh0        [N, 1, 3]  degree-0 real SH coefficient per colour channel
    shN        [N, (d+1)^2 - 1, 3]  higher bands (K = 0 for degree 0)

`rgb = 0.5 + C0 * sh0 + ...`, clamped at 0 (see docs/CONVENTIONS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from numpy.typing import ArrayLike

from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import quat_multiply, rotmat_to_quat
from splatfilm.scene.sh import rgb_to_sh0, rotate_sh_coeffs, sh0_to_rgb, sh_degree_of


def opacity_logit(opacity: ArrayLike | torch.Tensor, eps: float = 0.0) -> np.ndarray | torch.Tensor:
    """The stored (logit) opacity of opacities in (0, 1): log(p) - log1p(-p), p first clamped to
    [eps, 1 - eps] when eps > 0 (callers choose it: a file's quantisation, a dtype's eps).
    numpy arrays (or floats) give numpy, torch tensors torch (differentiable)."""
    if isinstance(opacity, torch.Tensor):
        p = opacity.clamp(eps, 1 - eps) if eps > 0 else opacity
        return torch.log(p) - torch.log1p(-p)
    p = np.clip(opacity, eps, 1 - eps) if eps > 0 else np.asarray(opacity, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def opacity_sigmoid(logit: ArrayLike | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Opacities in [0, 1] of stored (logit) opacities: 1 / (1 + exp(-x)). numpy arrays give
    numpy (an exp that overflows gives 0 quietly), torch tensors torch.sigmoid."""
    if isinstance(logit, torch.Tensor):
        return torch.sigmoid(logit)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(logit)))


@dataclass
class Gaussians:
    """A set of 3D Gaussians (raw parameters; see the module docstring for shapes)."""

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh0: torch.Tensor
    shN: torch.Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "scales": (n, 3),
            "opacities": (n,),
            "sh0": (n, 1, 3),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise SplatfilmError(f"Gaussians.{name} has shape {got}, expected {shape}")
        if self.shN.ndim != 3 or self.shN.shape[0] != n or self.shN.shape[2] != 3:
            raise SplatfilmError(f"Gaussians.shN has shape {tuple(self.shN.shape)}, expected ({n}, K, 3)")
        sh_degree_of(self.shN.shape[1] + 1)

    # ---- construction -------------------------------------------------------------------

    @staticmethod
    def from_activated(
        means: torch.Tensor,
        quats: torch.Tensor,
        scales: torch.Tensor,
        opacities: torch.Tensor,
        colors: torch.Tensor | None = None,
        sh: torch.Tensor | None = None,
    ) -> "Gaussians":
        """Build from activated values.

        means [N,3]; quats [N,4] (w,x,y,z); scales [N,3] standard deviations (> 0);
        opacities [N] in (0, 1); either `colors` [N,3] RGB in [0,1] (degree 0) or `sh`
        [N,(d+1)^2,3] full SH coefficients.
        """
        if (colors is None) == (sh is None):
            raise SplatfilmError("give exactly one of colors or sh")
        if sh is None:
            sh = rgb_to_sh0(colors)[:, None, :]
        return Gaussians(
            means=means,
            quats=quats,
            scales=torch.log(scales),
            opacities=opacity_logit(opacities, torch.finfo(opacities.dtype).eps),
            sh0=sh[:, :1].contiguous(),
            shN=sh[:, 1:].contiguous(),
        )

    @staticmethod
    def empty(sh_degree: int = 0, dtype: torch.dtype = torch.float32) -> "Gaussians":
        """No Gaussians, with room for SH bands up to `sh_degree`."""
        k = (sh_degree + 1) ** 2 - 1
        z = lambda *s: torch.zeros(s, dtype=dtype)  # noqa: E731
        return Gaussians(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, 1, 3), z(0, k, 3))

    # ---- sizes and activated accessors ---------------------------------------------------

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        """Highest SH band stored (0..MAX_SH_DEGREE)."""
        return sh_degree_of(self.shN.shape[1] + 1)

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def sh(self) -> torch.Tensor:
        """All SH coefficients [N, (d+1)^2, 3]."""
        return torch.cat([self.sh0, self.shN], dim=1)

    @property
    def activated_quats(self) -> torch.Tensor:
        """Unit quaternions [N, 4] (w, x, y, z)."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def activated_scales(self) -> torch.Tensor:
        """Standard deviations [N, 3] along the local axes."""
        return torch.exp(self.scales)

    @property
    def activated_opacities(self) -> torch.Tensor:
        """Opacities [N] in (0, 1)."""
        return opacity_sigmoid(self.opacities)

    @property
    def base_colors(self) -> torch.Tensor:
        """View-independent RGB [N, 3] from the degree-0 band, clamped at 0."""
        return sh0_to_rgb(self.sh0[:, 0]).clamp_min(0.0)

    # ---- tensor plumbing ----------------------------------------------------------------

    def _map(self, fn) -> "Gaussians":
        return Gaussians(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Gaussians":
        """Move (and optionally cast) every tensor."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> "Gaussians":
        """The same tensors cut from the autograd graph (shared storage, no copy)."""
        return self._map(lambda t: t.detach())

    def clone(self) -> "Gaussians":
        """A copy of every tensor (still in the graph: gradients flow back to the original)."""
        return self._map(lambda t: t.clone())

    def select(self, index: torch.Tensor) -> "Gaussians":
        """Subset by integer indices [M] or a boolean mask [N]."""
        if index.dtype == torch.bool and index.shape != (len(self),):
            raise SplatfilmError(f"mask has shape {tuple(index.shape)}, expected ({len(self)},)")
        return self._map(lambda t: t[index])

    def with_sh_degree(self, degree: int) -> "Gaussians":
        """Same Gaussians with SH bands truncated or zero-padded to `degree`."""
        k = (degree + 1) ** 2 - 1
        have = self.shN.shape[1]
        if k <= have:
            shN = self.shN[:, :k]
        else:
            pad = self.shN.new_zeros(len(self), k - have, 3)
            shN = torch.cat([self.shN, pad], dim=1)
        return replace(self, shN=shN.contiguous())

    @staticmethod
    def concat(items: "list[Gaussians]") -> "Gaussians":
        """Concatenate; SH bands are zero-padded to the highest degree among the inputs. One
        item is returned itself, not copied (a film frame joins its one static asset each
        frame): callers must not change the result in place."""
        if not items:
            raise SplatfilmError("concat needs at least one Gaussians")
        if len(items) == 1:
            return items[0]
        degree = max(g.sh_degree for g in items)
        items = [g.with_sh_degree(degree) for g in items]
        return Gaussians(**{f.name: torch.cat([getattr(g, f.name) for g in items]) for f in fields(Gaussians)})

    # ---- similarity transform -----------------------------------------------------------

    def transformed(
        self,
        rotation: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> "Gaussians":
        """Apply x -> scale * R x + t to every Gaussian, rotating the SH coefficients too.

        rotation [3,3] orthonormal with det +1; translation [3]; scale > 0 (uniform).
        An asset moved by T and seen from a camera moved by T renders the same image,
        view-dependent colour included.
        """
        dtype, device = self.dtype, self.device
        R = torch.eye(3, dtype=dtype, device=device) if rotation is None else torch.as_tensor(rotation, dtype=dtype, device=device)
        t = torch.zeros(3, dtype=dtype, device=device) if translation is None else torch.as_tensor(translation, dtype=dtype, device=device)
        if R.shape != (3, 3) or t.shape != (3,):
            raise SplatfilmError(f"rotation must be [3,3] and translation [3], got {tuple(R.shape)} and {tuple(t.shape)}")
        if not scale > 0:
            raise SplatfilmError(f"scale must be > 0, got {scale}")
        if not torch.allclose(R @ R.T, torch.eye(3, dtype=dtype, device=device), atol=1e-4) or torch.det(R) < 0:
            raise SplatfilmError("rotation is not a proper rotation matrix (orthonormal, det +1)")
        means = scale * self.means @ R.T + t
        q_r = rotmat_to_quat(R.detach().to(torch.float64)).to(dtype)
        quats = quat_multiply(q_r.expand_as(self.quats), self.quats)
        scales = self.scales + math.log(scale)
        shN = rotate_sh_coeffs(self.shN, R) if self.shN.shape[1] > 0 else self.shN
        return Gaussians(means, quats, scales, self.opacities, self.sh0, shN)
