"""Camera paths that define shots: film lenses, keyframed splines, camera moves, shot YAML,
interchange with nerfstudio and USD, previews.

    from splatfilm.shots import load_shot, export_shot
    shot = load_shot("cameras/dolly_in_table.yaml")
    cams = shot.cameras()                 # Cameras, one per frame: shot.1001.png, ...
    export_shot(shot, "out/shot.usda")    # or camera_path.json, transforms.json
"""

from splatfilm.shots.interchange import (
    export_format,
    export_shot,
    import_camera_path_json,
    read_usd_camera,
    shot_from_cameras,
    write_shot_camera_path_json,
    write_shot_transforms_json,
    write_usd_camera,
)
from splatfilm.shots.keyframes import Keyframe, KeyframePath
from splatfilm.shots.lens import (
    FULL_FRAME_MM,
    Lens,
    focal_mm_to_fov_deg,
    focal_mm_to_pixels,
    fov_deg_to_focal_mm,
    pixels_to_focal_mm,
)
from splatfilm.shots.moves import (
    MOVES,
    STARTING_MOVES,
    Arc,
    Dolly,
    DollyZoom,
    Follow,
    FollowPath,
    Handheld,
    LookAt,
    MovePath,
    Orbit,
    Pan,
    Pedestal,
    PointTrack,
    PushIn,
    RackFocus,
    Roll,
    Span,
    Tilt,
    Truck,
    Zoom,
    lay,
)
from splatfilm.scene.transforms import look_at_rotation, pan_tilt_roll_rotation, rotation_to_pan_tilt_roll
from splatfilm.shots.pose import CameraPath, PathSample, Pose
from splatfilm.shots.shot import Shot
from splatfilm.shots.shot_yaml import load_shot, parse_shot
from splatfilm.shots.timing import FIRST_FRAME, parse_fps

__all__ = [
    "FIRST_FRAME", "FULL_FRAME_MM", "MOVES", "STARTING_MOVES", "Arc", "CameraPath", "Dolly", "DollyZoom", "Follow",
    "FollowPath", "Handheld", "Keyframe", "KeyframePath", "Lens", "LookAt", "MovePath", "Orbit", "Pan", "PathSample",
    "Pedestal", "PointTrack", "Pose", "PushIn", "RackFocus", "Roll", "Shot", "Span", "Tilt", "Truck", "Zoom",
    "export_format", "export_shot", "focal_mm_to_fov_deg", "focal_mm_to_pixels", "fov_deg_to_focal_mm",
    "import_camera_path_json", "lay", "load_shot", "look_at_rotation", "pan_tilt_roll_rotation", "parse_fps",
    "parse_shot", "pixels_to_focal_mm", "read_usd_camera", "rotation_to_pan_tilt_roll", "shot_from_cameras",
    "write_shot_camera_path_json", "write_shot_transforms_json", "write_usd_camera",
]
