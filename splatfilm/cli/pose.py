"""`splatfilm pose`: a posed copy of a rigged asset, or the list of its clips."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers
from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES


def _cmd_pose(args: argparse.Namespace) -> None:
    from splatfilm.assets.posing import asset_rig, pose_asset
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.scene.skeleton import joint_depths, subtree

    if args.joints:
        rig = asset_rig(args.asset, len(load_gaussians(args.asset)))
        for j, (depth, name) in enumerate(zip(joint_depths(rig.parents), rig.joint_names)):
            # The rig keeps every node (an armature's transform moves the bones, a mesh's node
            # places it), but only the skin's joints are bones to pick for IK and look-at.
            mark = ""
            if rig.in_skin is not None and not rig.in_skin[j]:
                above = bool(rig.in_skin[subtree(rig.parents, j)].any())
                mark = "  (not a joint: a node " + ("the skeleton hangs from)" if above else "outside the skeleton)")
            print("  " * int(depth) + name + mark)
        return
    if args.list:
        rig = asset_rig(args.asset, len(load_gaussians(args.asset)))
        if not rig.clips:
            print(f"{args.asset}: the rig has no clips ({rig.num_joints} joints)")
        width = max((len(name) for name in rig.clips), default=0)
        for name, clip in rig.clips.items():
            keys = f"  (keys at {clip.start:.3f}-{clip.end:.3f} s in the file)" if clip.start != 0.0 else ""
            print(f"{name:<{width}}  {clip.duration:.3f} s{keys}")
        return
    if args.clip is None or args.output is None:
        raise SplatfilmError("pose needs --clip NAME and -o POSED.ply (or --list to see the clips)")
    sidecar = pose_asset(args.asset, args.output, args.clip, args.time, args.method)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians, clip {args.clip!r} at {args.time:g} s, "
          f"{args.method}) and {Path(args.output).with_suffix('.json')}")


def add_pose_command(sub: Subparsers) -> None:
    """Register `pose` with the CLI's subparsers."""
    p = sub.add_parser("pose", help="write a rigged asset posed by one of its clips at a time, or list its clips",
                       description="Pose ASSET (imported from a skinned glTF, its rig ASSET.rig.npz beside it) with "
                                   "clip NAME at SECONDS (from its first key) and write the posed copy in the asset's frame, "
                                   "with a sidecar noting the pose. Past the clip's end its last key holds.")
    p.add_argument("asset", help=f"rigged Gaussian asset ({GAUSSIAN_FILE_TYPES}) with ASSET.rig.npz beside it")
    p.add_argument("--list", action="store_true",
                   help="print the clips and their durations (first key to last; where the file's keys do not start "
                        "at 0, the seconds they span there), and write nothing")
    p.add_argument("--joints", action="store_true",
                   help="print the skeleton's joints, each indented under its parent (the names a film's ik: legs "
                        "and look_at: joint take; the file's other nodes the rig keeps, an armature or a mesh's "
                        "node, are marked 'not a joint'), and write nothing")
    p.add_argument("--clip", metavar="NAME", help="the clip to play")
    p.add_argument("--time", type=float, default=0.0, metavar="SECONDS",
                   help="seconds into the clip from its first key (default 0), as a film's clips count: a Blender "
                        "export keyed from frame 1 at 30 fps has keys at 0.033-1.033 s, and --time 0 is frame 1")
    p.add_argument("--method", choices=["lbs", "dqs"], default="lbs",
                   help="linear blend skinning (default) or dual quaternions (keeps twisted joints' volume)")
    p.add_argument("-o", "--output", help=f"the posed copy ({GAUSSIAN_FILE_TYPES}); sidecar .json beside it")
    p.set_defaults(func=_cmd_pose)
