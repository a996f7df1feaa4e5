"""Posing speed: a rigged asset's Gaussians moved to a pose, linear blend vs dual quaternions.

    python benchmarks/pose.py                       # 10k and 100k Gaussians, SH degree 3
    python benchmarks/pose.py --sizes 100k --repeats 10

The rig: a 24-joint humanoid-like tree (spine, neck, head, two arms and two legs of 4
joints), each joint turned by up to 40 degrees in the pose, and some joints scaled (as IK
stretch or a scale key would). The Gaussians: random, SH degree 3; half follow one joint,
the rest 2-4 joints with random weights (a skinned character's mix: most of a limb moves
with one bone, the joints blend). Times are the best of `repeats` runs after a warm-up
(the first call compiles numba's kernels, cached on disk afterwards), for the whole of
`pose_gaussians` (skinning matrices, per-Gaussian blend, means, covariances, SH) on the
fused CPU kernels, and for the torch code (the path for CUDA tensors and gradients).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.scene.skeleton import JointTRS, Rig, global_transforms  # noqa: E402
from splatfilm.scene.skinning import pose_gaussians  # noqa: E402
from splatfilm.scene.transforms import quat_from_rotation, rotation_about  # noqa: E402

# parent of each joint: 0 hips, 1-4 spine to head, 5-8 / 9-12 arms, 13-16 / 17-20 legs, 21-23 extras
PARENTS = [-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19, 4, 8, 12]


def make_rig(n: int, seed: int = 0) -> tuple[Gaussians, Rig, np.ndarray]:
    rng = np.random.default_rng(seed)
    J = len(PARENTS)
    offsets = rng.normal(0, 0.15, (J, 3)) + [0.0, 0.0, 0.2]
    rest = JointTRS(offsets, np.tile([1.0, 0.0, 0.0, 0.0], (J, 1)), np.ones((J, 3)))
    parents = np.array(PARENTS)
    rig = Rig([f"j{i}" for i in range(J)], parents, rest, np.eye(4)[None].repeat(J, 0), {},
              np.zeros((n, 4), np.int32), np.zeros((n, 4), np.float32))
    rig.inverse_binds = np.linalg.inv(rig.rest_globals())
    joints = np.stack([rng.choice(J, 4, replace=False) for _ in range(n)]).astype(np.int32)
    weights = rng.dirichlet(np.ones(4), n)
    k = rng.integers(1, 5, n)
    k[: n // 2] = 1
    weights[np.arange(4)[None, :] >= k[:, None]] = 0.0
    weights /= weights.sum(1, keepdims=True)
    rig.joints, rig.weights = joints, weights.astype(np.float32)
    # Gaussians around their heaviest joint's rest position.
    centres = rig.rest_globals()[joints[np.arange(n), weights.argmax(1)], :3, 3]
    g = torch.Generator().manual_seed(seed)
    gs = Gaussians(torch.from_numpy(centres).float() + 0.05 * torch.randn(n, 3, generator=g),
                   torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) * 0.3 - 4.0,
                   torch.randn(n, generator=g), torch.randn(n, 1, 3, generator=g),
                   torch.randn(n, 15, 3, generator=g) * 0.1)
    pose = rest.copy()
    axes = rng.normal(size=(J, 3))
    angles = np.radians(rng.uniform(-40, 40, J))
    pose.rotation = quat_from_rotation(np.array([rotation_about(a, t) for a, t in zip(axes, angles)]))
    pose.scale[[7, 11, 15]] = [1.2, 0.9, 1.0]
    return gs, rig, global_transforms(rig, pose)


def best_of(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k", help="comma-separated Gaussian counts (k = 1000)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true", help="skip the (slow on CPU) torch rows")
    args = ap.parse_args()
    import numba

    print(f"# {platform.machine()}, {torch.get_num_threads()} torch threads, {numba.get_num_threads()} numba threads, "
          f"torch {torch.__version__}, numba {numba.__version__}")
    print("| Gaussians | SH degree | method | path | seconds |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n = int(float(size.lower().replace("k", "")) * (1000 if "k" in size.lower() else 1))
        g, rig, G = make_rig(n)
        for method in ("lbs", "dqs"):
            paths = [("fused CPU kernels", True)] + ([] if args.no_torch else [("torch", False)])
            for label, fused in paths:
                s = best_of(lambda: pose_gaussians(g, rig, G, method, fused=fused), args.repeats)
                print(f"| {size} | 3 | {method} | {label} | {s:.4f} |", flush=True)


if __name__ == "__main__":
    main()
