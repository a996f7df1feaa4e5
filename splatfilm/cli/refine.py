"""`splatfilm refine`: add detail to a fitted scene with a refiner and distil it back into the scene
(Difix3D-style)."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers, add_backend, add_refiner_prompt, non_negative_float, non_negative_int, positive_int, seed


def _cmd_refine(args: argparse.Namespace) -> None:
    from splatfilm.refine.distill import DistillConfig
    from splatfilm.refine.pairs import PairConfig
    from splatfilm.refine.run import run_refine
    from splatfilm.refine.scene_refiner import SceneRefinerConfig

    if args.shots:
        from splatfilm.film.asset_cameras import film_cameras_for_asset
        from splatfilm.film.script import parse_film

        targets = film_cameras_for_asset(parse_film(args.shots), args.scene)
    else:
        from splatfilm.assets.asset_frame import cameras_in_asset_frame
        from splatfilm.io.camera_files import read_cameras

        targets = cameras_in_asset_frame(args.scene, read_cameras(args.cameras), args.cameras)
    train_cfg = SceneRefinerConfig(seed=args.seed)
    if args.refiner_iterations:
        train_cfg.iterations = args.refiner_iterations
    dcfg = DistillConfig(rounds=args.rounds, views=args.views, steps=args.steps, pseudo_weight=args.pseudo_weight,
                         seed=args.seed, backend=args.backend)
    pcfg = PairConfig(folds=args.folds, steps=args.pair_steps, seed=args.seed, backend=args.backend)
    sidecar = run_refine(args.scene, args.data, args.output, targets, args.shots or args.cameras,
                         refiner=args.refiner, pair_cfg=pcfg, train_cfg=train_cfg, distill_cfg=dcfg,
                         downscale=args.downscale, refiner_prompt=args.refiner_prompt)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians) and {Path(args.output).with_suffix('.json')} "
          f"in {sidecar['refined']['seconds']:.0f} s")


def add_refine_command(sub: Subparsers) -> None:
    """Register `refine` with the CLI's subparsers."""
    p = sub.add_parser("refine", help="add detail with a refiner and distil it back into the scene (Difix3D-style)",
                       description="Render SCENE along the target cameras (stepping out from the capture), refine "
                                   "the renders, add them as lower-weight pseudo-views and continue optimising the "
                                   "same Gaussians; repeat. Every shot then renders the same added detail. Without "
                                   "--refiner, a per-scene refiner is first trained on pairs made from DATA.")
    p.add_argument("scene", help="the fitted scene (.ply)")
    p.add_argument("data", help="the capture SCENE was fitted from (as `splatfilm fit` takes it)")
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--shots", metavar="FILM.yaml", help="refine toward every camera of the film's shots that see SCENE")
    t.add_argument("--cameras", metavar="CAMERAS", help="refine toward these cameras (any file render-cameras reads)")
    p.add_argument("-o", "--output", required=True, help="output .ply (sidecar .json and work folder .refine/ beside it)")
    p.add_argument("--refiner", metavar="FOLDER", help="a local refiner: a diffusers sd-turbo-class img2img folder, "
                                                       "or a folder a previous refine trained (default: train one)")
    add_refiner_prompt(p)
    add_backend(p)
    p.add_argument("--rounds", type=positive_int, default=3, help="progressive rounds (default 3)")
    p.add_argument("--views", type=non_negative_int, default=12, help="pseudo-views per round, 0 = every target (default 12)")
    p.add_argument("--steps", type=positive_int, default=400, help="optimisation steps per round (default 400)")
    p.add_argument("--pseudo-weight", type=non_negative_float, default=0.5,
                   help="loss weight of a pseudo-view; a photo's is 1 (default 0.5)")
    p.add_argument("--folds", type=int, default=3, help="leave-fold-out fits for the refiner's pairs (default 3)")
    p.add_argument("--pair-steps", type=positive_int, default=800, help="steps of each fit made for pairs (default 800)")
    p.add_argument("--refiner-iterations", type=positive_int, help="training iterations of the per-scene refiner")
    p.add_argument("--downscale", type=float, help="divide the capture's image sizes by this factor")
    p.add_argument("--seed", type=seed, default=0)
    p.set_defaults(func=_cmd_refine)
