"""Non-destructive edits: selections (box, sphere, ellipsoid; asset or world frame; invert),
operations (delete, keep, recolour, opacity) with exact numbers on a few Gaussians, the
YAML field paths, the `splatfilm edit` round trip, and world-frame edits on a moving asset."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml

from helpers import cli_error

from splatfilm.cli import main
from splatfilm.assets.edits import Box, ColourAdjust, Edit, Ellipsoid, Selection, Sphere, apply_edits, parse_edits
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.render.spherical_harmonics import spherical_harmonics as eval_sh
from splatfilm.scene.sh import C0
from splatfilm.film.world import Asset, KeyedMotion, World
from splatfilm.scene.transforms import Similarity, euler_xyz_rotation, yaw_rotation
from splatfilm.assets.sidecar import Sidecar
from splatfilm.yamlfields import At


def row(n: int = 5, sh_degree: int = 1) -> Gaussians:
    """n Gaussians on the x axis at x = 0, 1, ..., n-1 (float64), colours (0.2, 0.4, 0.6) +
    0.1 * i, opacity 0.5, higher SH bands 0.01 * (index + 1)."""
    f64 = torch.float64
    means = torch.zeros(n, 3, dtype=f64)
    means[:, 0] = torch.arange(n, dtype=f64)
    colors = torch.tensor([0.2, 0.4, 0.6], dtype=f64) + 0.1 * torch.arange(n, dtype=f64)[:, None]
    k = (sh_degree + 1) ** 2
    sh = torch.zeros(n, k, 3, dtype=f64)
    sh[:, 0] = (colors - 0.5) / C0
    sh[:, 1:] = 0.01 * torch.arange(1, (k - 1) * 3 + 1, dtype=f64).reshape(k - 1, 3)
    return Gaussians.from_activated(means, torch.tensor([[1.0, 0, 0, 0]], dtype=f64).expand(n, 4).clone(),
                                    torch.full((n, 3), 0.1, dtype=f64), torch.full((n,), 0.5, dtype=f64), sh=sh)


def xs(g: Gaussians) -> list[float]:
    return g.means[:, 0].tolist()


def edit(op: str, shape=None, frame="asset", invert=False, **kw) -> Edit:
    return Edit(op, Selection(shape, frame, invert), label=f"test {op}", **kw)


# ---- selections ---------------------------------------------------------------------------


def test_box_by_corners_and_by_centre_size_yaw():
    g = row()
    kept = apply_edits(g, [edit("keep", Box((1.5, 0, 0), (1.2, 1, 1)))])  # x in [0.9, 2.1]
    assert xs(kept) == [1.0, 2.0]
    # A thin box along the x axis turned 90 degrees lies along y: it holds only x = 0.
    thin = Box((0, 0, 0), (10, 0.2, 0.2), yaw_deg=90)
    assert xs(apply_edits(g, [edit("keep", thin)])) == [0.0]
    # Turned 45 degrees it holds points on the diagonal, not on the x axis.
    diag = Box((1.0, 1.0, 0.0), (3.0, 0.2, 0.2), yaw_deg=45)
    assert diag.contains(np.array([[0.5, 0.5, 0], [1.0, 0, 0], [2, 2, 0]])).tolist() == [True, False, True]
    # Parsed from corners: the same box.
    (e,) = parse_edits([{"op": "keep", "box": {"min": [0.9, -0.5, -0.5], "max": [2.1, 0.5, 0.5]}}], At("e.yaml"))
    assert e.selection.shape.centre == pytest.approx((1.5, 0, 0)) and e.selection.shape.size == pytest.approx((1.2, 1, 1))
    assert xs(apply_edits(g, [e])) == [1.0, 2.0]


def test_sphere_and_ellipsoid():
    g = row()
    assert xs(apply_edits(g, [edit("delete", Sphere((2, 0, 0), 1.0))])) == [0.0, 4.0]  # boundary included
    # Long axis along y: only x = 2 inside; turned 90 degrees about z, the long axis is x.
    e = Ellipsoid((2, 0, 0), (0.5, 3.0, 0.5))
    assert xs(apply_edits(g, [edit("keep", e)])) == [2.0]
    (parsed,) = parse_edits([{"op": "keep", "ellipsoid": {"centre": [2, 0, 0], "radii": [0.5, 1.5, 0.5],
                                                          "rotation": [0, 0, 90]}}], At("e.yaml"))
    assert xs(apply_edits(g, [parsed])) == [1.0, 2.0, 3.0]
    # Rotation order x, then y, then z (fixed axes): +x -> (y 90) -> -z -> (z 90) -> -z.
    tilted = Ellipsoid((0, 0, 0), (2.0, 0.1, 0.1),
                       tuple(map(tuple, _rot([0, 90, 90]))))
    assert tilted.contains(np.array([[0, 0, -1.5], [1.5, 0, 0], [0, 1.5, 0]])).tolist() == [True, False, False]


def _rot(deg):
    return euler_xyz_rotation(np.array(deg, dtype=float))


def test_invert():
    g = row()
    assert xs(apply_edits(g, [edit("delete", Sphere((0, 0, 0), 1.5), invert=True)])) == [0.0, 1.0]
    assert xs(apply_edits(g, [edit("keep", Sphere((0, 0, 0), 1.5), invert=True)])) == [2.0, 3.0, 4.0]


def test_world_frame_selection():
    """Asset placed by x -> 2 Rz(90) x + (10, 0, 0): asset x = 3 lands at world (10, 6, 0)."""
    g = row()
    place = Similarity(yaw_rotation(90.0), [10.0, 0.0, 0.0], 2.0)
    e = edit("delete", Sphere((10, 6, 0), 0.5), frame="world")
    assert xs(apply_edits(g, [e], place)) == [0.0, 1.0, 2.0, 4.0]
    # The same shape in the asset frame is somewhere else entirely: nothing selected.
    assert xs(apply_edits(g, [edit("delete", Box((10, 6, 0), (1, 1, 1)))], place)) == xs(g)
    with pytest.raises(SplatfilmError, match="test delete: frame: world needs the asset's placement"):
        apply_edits(g, [e], None)


# ---- operations ---------------------------------------------------------------------------


def test_delete_keep_and_opacity_exact():
    g = row()
    out = apply_edits(g, [edit("opacity", Box((3.5, 0, 0), (1.2, 1, 1)), opacity_factor=0.5)])
    torch.testing.assert_close(out.activated_opacities, torch.tensor([0.5, 0.5, 0.5, 0.25, 0.25], dtype=torch.float64))
    # Scaling past 1 clamps just below it; 0 makes the Gaussian (almost exactly) invisible.
    out = apply_edits(g, [edit("opacity", None, opacity_factor=3.0)])
    assert torch.all(out.activated_opacities > 0.999) and torch.all(out.activated_opacities < 1)
    out = apply_edits(g, [edit("opacity", Sphere((0, 0, 0), 0.1), opacity_factor=0.0)])
    assert float(out.activated_opacities[0]) < 1e-5 and torch.isfinite(out.opacities).all()
    # In order: delete x = 4, then keep x <= 1.5 of the rest.
    out = apply_edits(g, [edit("delete", Sphere((4, 0, 0), 0.1)), edit("keep", Box((0, 0, 0), (3, 1, 1)))])
    assert xs(out) == [0.0, 1.0]
    torch.testing.assert_close(out.sh, g.sh[:2])


def _srgb(lin):
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)


def _lin(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_recolour_exact_and_view_dependent():
    g = row(sh_degree=2)
    adj = ColourAdjust(tint=(1.0, 0.5, 2.0), exposure=1.0, brightness=0.05, saturation=0.5)
    out = apply_edits(g, [edit("recolour", Sphere((1, 0, 0), 0.1), colour=adj)])
    # Only x = 1 changed. Its colour (0.3, 0.5, 0.7) in linear light one stop up, halfway to
    # its luminance, times the tint (1, 0.5, 2), encoded, plus 0.05.
    exposed = 2 * _lin(np.array([0.3, 0.5, 0.7]))
    luminance = exposed @ [0.2126, 0.7152, 0.0722]
    expected = _srgb((0.5 * exposed + 0.5 * luminance) * [1, 0.5, 2]) + 0.05
    np.testing.assert_allclose(out.base_colors[1].numpy(), expected, atol=1e-12)
    others = [0, 2, 3, 4]
    torch.testing.assert_close(out.sh[others], g.sh[others])
    # View-dependent colour follows: rgb'(d) = enc(A dec(rgb(d))) + b in every direction, to
    # first order (the transfer's Jacobian at the base colour; the view offsets here are 0.02-0.1).
    dirs = torch.nn.functional.normalize(torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)),
                                         dim=1)
    before = (eval_sh(2, g.sh[1:2].expand(7, -1, -1), dirs) - 0.5).numpy()
    after = (eval_sh(2, out.sh[1:2].expand(7, -1, -1), dirs) - 0.5).numpy()
    A = adj.linear_matrix()
    np.testing.assert_allclose(A, np.array([1, 0.5, 2])[:, None] * adj.saturation_matrix() * 2)
    np.testing.assert_allclose(after, _srgb(_lin(before + 0.5) @ A.T) + 0.05 - 0.5, atol=0.01)
    # and exactly the Jacobian: a finite difference of the transfer at the base colour
    base = np.array([0.3, 0.5, 0.7])
    h = 1e-6
    J = np.stack([(_srgb(_lin(base + h * e) @ A.T) - _srgb(_lin(base - h * e) @ A.T)) / (2 * h) for e in np.eye(3)],
                 axis=1)
    np.testing.assert_allclose(out.shN[1].numpy(), g.shN[1].numpy() @ J.T, rtol=1e-6)
    assert np.abs(after - before).max() > 0.1  # (the edit moved them: the tolerance is no pass by default)


def test_exposure_is_in_linear_light():
    """Exposure multiplied the sRGB-encoded colour: a stop took grey 0.5 to 1.0 (clipped) and
    a stop down to 0.25; Blender's, Nuke's and Resolve's exposure is 2^stops in linear light:
    0.686 and 0.361. The higher bands take the transfer's slope at the base colour, so a view's
    small offset keeps its share of the exposed colour."""
    f64 = torch.float64
    grey = Gaussians.from_activated(torch.zeros(1, 3, dtype=f64), torch.tensor([[1.0, 0, 0, 0]], dtype=f64),
                                    torch.full((1, 3), 0.1, dtype=f64), torch.tensor([0.9], dtype=f64),
                                    sh=torch.cat([torch.full((1, 1, 3), 0.0, dtype=f64),
                                                  torch.full((1, 3, 3), 0.01, dtype=f64)], dim=1))
    assert grey.base_colors[0].tolist() == pytest.approx([0.5] * 3)
    for stops, want in ((1.0, 0.686), (-1.0, 0.361), (0.0, 0.5)):
        out = apply_edits(grey, [edit("recolour", None, colour=ColourAdjust(exposure=stops))])
        np.testing.assert_allclose(out.base_colors[0].numpy(), want, atol=0.01)
        # the slope: (E(0.5 + h) - E(0.5 - h)) / 2h
        h = 1e-6
        slope = (_srgb(2**stops * _lin(0.5 + h)) - _srgb(2**stops * _lin(0.5 - h))) / (2 * h)
        np.testing.assert_allclose(out.shN[0].numpy(), 0.01 * slope, rtol=1e-6)


def test_recolour_each_control_alone():
    g = row(sh_degree=1)
    base = g.base_colors.numpy()
    run = lambda adj: apply_edits(g, [edit("recolour", None, colour=adj)])  # noqa: E731
    np.testing.assert_allclose(run(ColourAdjust(exposure=-1.0)).base_colors.numpy(), _srgb(_lin(base) / 2),
                               atol=1e-12)
    np.testing.assert_allclose(run(ColourAdjust(tint=(1, 0, 1))).base_colors.numpy(), base * [1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(run(ColourAdjust(tint=(0.5, 1, 1))).base_colors.numpy(),
                               _srgb(_lin(base) * [0.5, 1, 1]), atol=1e-12)
    np.testing.assert_allclose(run(ColourAdjust(brightness=0.1)).base_colors.numpy(), base + 0.1, atol=1e-12)
    Y = np.repeat(_lin(base) @ [0.2126, 0.7152, 0.0722], 3).reshape(-1, 3)
    np.testing.assert_allclose(run(ColourAdjust(saturation=0.0)).base_colors.numpy(), _srgb(Y), atol=1e-12)
    # Saturation first: a tinted monochrome.
    sepia = run(ColourAdjust(saturation=0.0, tint=(1.0, 0.8, 0.6))).base_colors.numpy()
    np.testing.assert_allclose(sepia, _srgb(Y * [1.0, 0.8, 0.6]), atol=1e-12)
    # Exposure and tint scale the higher bands; brightness leaves them. Exposure scales them by
    # its slope at the base colour: above the sRGB toe E(v) = 2^(stops / 2.4) (v + 0.055) - 0.055,
    # so a stop is 2^(1 / 2.4) = 1.335 there, whatever the colour.
    torch.testing.assert_close(run(ColourAdjust(exposure=1.0)).shN, g.shN * 2 ** (1 / 2.4))
    # A grey tint is exposure: 2 = one stop.
    torch.testing.assert_close(run(ColourAdjust(tint=(2, 2, 2))).shN, g.shN * 2 ** (1 / 2.4))
    torch.testing.assert_close(run(ColourAdjust(brightness=0.3)).shN, g.shN)


def test_tint_and_saturation_are_in_linear_light():
    """tint and saturation acted on the sRGB-encoded values while exposure was linear: tint
    (1, 0.8, 0.8) gave linear G/R gains of 0.664 / 0.621 / 0.606 on greys 0.2 / 0.5 / 0.9 (not a
    white balance), and saturation 0 took (0.8, 0.2, 0.1) to linear grey 0.084 where its
    luminance is 0.153 (the luma Y' for the luminance Y). Nuke's Grade and Saturation work on
    linear values."""
    f64 = torch.float64

    def one(colours):
        c = torch.tensor(colours, dtype=f64)
        n = len(c)
        return Gaussians.from_activated(torch.zeros(n, 3, dtype=f64), torch.tensor([[1.0, 0, 0, 0]] * n, dtype=f64),
                                        torch.full((n, 3), 0.1, dtype=f64), torch.full((n,), 0.9, dtype=f64),
                                        sh=((c - 0.5) / C0)[:, None, :])

    half = apply_edits(one([[0.5, 0.5, 0.5]]), [edit("recolour", None, colour=ColourAdjust(tint=(0.5, 0.5, 0.5)))])
    np.testing.assert_allclose(_lin(half.base_colors[0].numpy()), 0.5 * _lin(0.5), rtol=1e-9)  # 0.5 * 0.214
    greys = apply_edits(one([[v] * 3 for v in (0.2, 0.5, 0.9)]),
                        [edit("recolour", None, colour=ColourAdjust(tint=(1.0, 0.8, 0.8)))])
    lin = _lin(greys.base_colors.numpy())
    np.testing.assert_allclose(lin[:, 1] / lin[:, 0], 0.8, rtol=1e-9)
    red = apply_edits(one([[0.8, 0.2, 0.1]]), [edit("recolour", None, colour=ColourAdjust(saturation=0.0))])
    Y = _lin(np.array([0.8, 0.2, 0.1])) @ [0.2126, 0.7152, 0.0722]
    assert Y == pytest.approx(0.153, abs=1e-3)
    np.testing.assert_allclose(_lin(red.base_colors[0].numpy()), Y, rtol=1e-9)


def test_pure_and_nothing_selected_warns(capsys):
    g = row()
    before = g.clone()
    out = apply_edits(g, [edit("delete", Sphere((100, 0, 0), 1.0)), edit("recolour", None,
                                                                         colour=ColourAdjust(exposure=1))])
    err = capsys.readouterr().err
    assert "note: test delete (delete) selects no Gaussians; skipped" in err
    assert len(out) == len(g)
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(g, name), getattr(before, name))  # the input is untouched
    # keep of nothing (a typo'd box) was skipped with a warning, so everything was kept: an
    # error now, as a delete of everything is.
    with pytest.raises(SplatfilmError, match=r"^test keep: keep selects no Gaussians of the asset \(of 5\)"):
        apply_edits(g, [edit("keep", Sphere((100, 0, 0), 1.0))])
    with pytest.raises(SplatfilmError, match="test delete: delete would remove every Gaussian"):
        apply_edits(g, [edit("delete", Box((2, 0, 0), (10, 1, 1)))])


# ---- YAML ---------------------------------------------------------------------------------

EDITS_YAML = """
- op: delete
  box: {min: [3.5, -1, -1], max: [5, 1, 1]}
- op: recolour
  sphere: {centre: [0, 0, 0], radius: 0.5}
  tint: [1, 0.5, 0.5]
  exposure: 1
- op: opacity
  ellipsoid: {centre: [1, 0, 0], radii: [0.2, 0.2, 0.2], rotation: [0, 0, 30]}
  factor: 0.5
  invert: true
- op: keep
  box: {centre: [0, 0, 0], size: [100, 100, 100], yaw: 10}
  frame: world
"""


def test_parse_edits():
    edits = parse_edits(yaml.safe_load(EDITS_YAML), At("film.yaml")["assets"]["hero"]["edits"])
    assert [e.op for e in edits] == ["delete", "recolour", "opacity", "keep"]
    assert edits[0].selection == Selection(Box((4.25, 0.0, 0.0), (1.5, 2.0, 2.0)), "asset", False)
    assert edits[1].colour == ColourAdjust((1.0, 0.5, 0.5), 1.0, 0.0, 1.0)
    assert edits[2].opacity_factor == 0.5 and edits[2].selection.invert
    assert edits[3].selection.frame == "world" and edits[3].selection.shape.yaw_deg == 10
    assert edits[1].label == "film.yaml: assets.hero.edits[1]"
    assert parse_edits([], At("f.yaml")) == []


@pytest.mark.parametrize("value, message", [
    ({"op": "delete"}, "edits: expected a list of edits"),
    ([{"box": {}}], r"edits\[0\]: missing `op`"),
    ([{"op": "paint"}], r"edits\[0\]\.op: expected one of delete, keep, recolour, opacity, got 'paint'"),
    ([{"op": "delete"}], r"edits\[0\]: delete needs a shape: box, sphere or ellipsoid"),
    ([{"op": "delete", "sphere": {"centre": [0, 0, 0], "radius": -1}}], r"edits\[0\]\.sphere\.radius: must be > 0"),
    ([{"op": "delete", "sphere": {"centre": [0, 0], "radius": 1}}], r"edits\[0\]\.sphere\.centre: expected \[x, y, z\]"),
    ([{"op": "keep", "box": {"min": [0, 0, 0]}}], r"edits\[0\]\.box: give min and max corners"),
    ([{"op": "keep", "box": {"min": [0, 0, 0], "max": [1, -1, 1]}}], r"edits\[0\]\.box\.max: is below min"),
    ([{"op": "keep", "box": {"centre": [0, 0, 0], "size": [1, 1, 1], "yaw": "left"}}],
     r"edits\[0\]\.box\.yaw: expected a number, got 'left'"),
    ([{"op": "keep", "sphere": {"centre": [0, 0, 0], "radius": 1}, "box": {}}], r"edits\[0\]: give one shape"),
    ([{"op": "keep", "sphere": {"centre": [0, 0, 0], "radius": 1}, "frame": "camera"}],
     r"edits\[0\]\.frame: expected asset or world, got 'camera'"),
    ([{"op": "keep", "sphere": {"centre": [0, 0, 0], "radius": 1}, "invert": "yes"}],
     r"edits\[0\]\.invert: expected true or false"),
    ([{"op": "keep", "sphere": {"centre": [0, 0, 0], "radius": 1}, "tint": [1, 1, 1]}],
     r"edits\[0\]\.tint: unknown field"),
    ([{"op": "recolour"}], r"edits\[0\]: recolour needs at least one of tint"),
    ([{"op": "recolour", "tint": [1, -1, 1]}], r"edits\[0\]\.tint: must not be negative"),
    ([{"op": "recolour", "saturation": -1}], r"edits\[0\]\.saturation: must be >= 0"),
    ([{"op": "opacity"}], r"edits\[0\]: opacity needs factor"),
    ([{"op": "opacity", "factor": 1}, {"op": "opacity", "factor": "half"}],
     r"edits\[1\]\.factor: expected a number, got 'half'"),
    ([{"op": "delete", "ellipsoid": {"centre": [0, 0, 0], "radii": [1, 0, 1]}}],
     r"edits\[0\]\.ellipsoid\.radii: must be > 0"),
])
def test_field_path_errors(value, message):
    with pytest.raises(SplatfilmError, match=r"^film\.yaml: assets\.hero\." + message):
        parse_edits(value, At("film.yaml")["assets"]["hero"]["edits"])


# ---- the CLI ------------------------------------------------------------------------------


def test_cli_round_trip(tmp_path, capsys):
    g = row(sh_degree=1).to(dtype=torch.float32)
    src = tmp_path / "hero.ply"
    save_gaussians(src, g)
    (tmp_path / "hero.json").write_text(json.dumps({"asset": "hero.ply", "kind": "object", "num_gaussians": 5,
                                                     "frame": {"up": [0, 0, 1], "bounds_min": [0, 0, 0],
                                                               "bounds_max": [4, 0, 0]},
                                                     "canonical_transform": {"rotation": np.eye(3).tolist(),
                                                                             "translation": [-2, 0, 0],
                                                                             "scale": 1.0}}))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    (tmp_path / "edits.yaml").write_text(EDITS_YAML.replace("  frame: world\n", ""))
    # Beside the source, as another format of the same name: its sidecar is hero.ply's, refused
    # before anything is written.
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(tmp_path / "hero.spz")]) == 2
    assert "hero.json: is the sidecar of hero.ply" in capsys.readouterr().err
    assert not (tmp_path / "hero.spz").exists()
    (tmp_path / "hero.spz").write_bytes(b"")  # a stray file there: hero.ply's record is still not its
    assert Sidecar.of_asset(tmp_path / "hero.spz") is None and Sidecar.of_asset(src)["asset"] == "hero.ply"
    (tmp_path / "hero.spz").unlink()
    out = tmp_path / "baked" / "hero_edited.ply"
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(out)]) == 0
    assert "4 Gaussians" in capsys.readouterr().out
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the captured asset is untouched
    baked = load_gaussians(out)
    expected = apply_edits(g, parse_edits(yaml.safe_load(EDITS_YAML.replace("  frame: world\n", "")), At("e")))
    assert len(baked) == 4 and baked.sh_degree == 1
    torch.testing.assert_close(baked.sh, expected.sh)
    torch.testing.assert_close(baked.opacities, expected.opacities)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["asset"] == "hero_edited.ply" and side["num_gaussians"] == 4 and side["kind"] == "object"
    assert side["canonical_transform"]["translation"] == [-2, 0, 0]  # stands where the original stood
    assert side["edits"]["from"] == str(src.resolve()) and len(side["edits"]["edits"]) == 4
    assert side["edits"]["edits"][0]["op"] == "delete"
    assert side["frame"]["bounds_max"][0] == pytest.approx(3.0, abs=0.1)
    # A mapping with `edits:` works too; errors are one line naming the file and field.
    (tmp_path / "bad.yaml").write_text("edits:\n  - op: delete\n    sphere: {centre: [0, 0, 0], radius: 0}\n")
    assert main(["edit", str(src), str(tmp_path / "bad.yaml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {tmp_path / 'bad.yaml'}: edits[0].sphere.radius: must be > 0, got 0"
    (tmp_path / "world.yaml").write_text(EDITS_YAML)
    assert main(["edit", str(src), str(tmp_path / "world.yaml"), "-o", str(out)]) == 2
    assert "[3]: frame: world needs a placement" in capsys.readouterr().err
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(src)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["edit", str(src), str(tmp_path / "missing.yaml"), "-o", str(out)]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
    # A keep whose box misses the asset (a typo): one line, nothing written.
    (tmp_path / "typo.yaml").write_text("- {op: keep, sphere: {center: [50, 50, 50], radius: 0.1}}\n")
    err = cli_error(capsys, ["edit", src, tmp_path / "typo.yaml", "-o", tmp_path / "typo.ply"], "typo.yaml")
    assert err == f"error: {tmp_path / 'typo.yaml'}: [0]: keep selects no Gaussians of the asset (of 5); " \
                  "check its shape's centre, size and frame", err
    assert not (tmp_path / "typo.ply").exists()


def test_edit_carries_the_capture_cameras(tmp_path, capsys):
    """A fitted set's capture cameras (SET.cameras.json, which clean and mesh render from)
    come along with its edited copy, as `clean` records them: the edits do not move it."""
    from splatfilm.assets.cleanup import capture_cameras_of
    from splatfilm.io.asset_files import (capture_cameras_path, capture_masks_path, read_capture_masks,
                                          write_capture_cameras, write_capture_masks)
    from splatfilm.scene.cameras import Cameras

    src = tmp_path / "set.ply"
    save_gaussians(src, row().to(dtype=torch.float32))
    eyes = [(0.0, -4.0, 1.0), (3.0, -3.0, 1.5)]
    viewmats = []
    for eye in eyes:
        c2w = np.eye(4)
        c2w[:3, 3] = eye  # looking along +z: the pose only has to survive the trip
        viewmats.append(np.linalg.inv(c2w))
    cams = Cameras(np.stack(viewmats), np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]), 64, 48,
                   names=["images/a.png", "images/b.png"])
    write_capture_cameras(src, cams)
    # An object's masks go with the views they outline (clean keeps its Gaussians inside them).
    masks = [np.zeros((48, 64, 1), bool), np.ones((48, 64, 1), bool)]
    masks[0][10:20, 5:9] = True
    write_capture_masks(src, masks)
    (tmp_path / "edits.yaml").write_text("- {op: delete, sphere: {centre: [4, 0, 0], radius: 0.5}}\n")
    out = tmp_path / "edited" / "set_edited.ply"
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(out)]) == 0
    assert capture_cameras_path(out).exists()
    got_masks = read_capture_masks(out)
    assert got_masks is not None and all((a == b).all() for a, b in zip(got_masks, masks))
    got = capture_cameras_of(out)  # what clean and mesh read when no --cameras is given
    np.testing.assert_allclose(got.viewmats, cams.viewmats, atol=1e-12)
    np.testing.assert_allclose(got.Ks, cams.Ks)
    assert got.names == cams.names and got.widths.tolist() == [64, 64]
    # Without cameras beside the input there are none beside the copy either.
    capture_cameras_path(src).unlink()
    capture_masks_path(src).unlink()
    # An asset without cameras edited into the same output: the earlier copy's cameras and masks go.
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(out)]) == 0
    assert not capture_cameras_path(out).exists() and not capture_masks_path(out).exists()
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(tmp_path / "bare.ply")]) == 0
    assert not capture_cameras_path(tmp_path / "bare.ply").exists()


# ---- world-frame edits on a moving asset --------------------------------------------------


def test_world_frame_edit_follows_the_asset():
    """A world-frame selection is resolved where the asset is placed; the edit then belongs to
    the asset: it moves (and turns) with it, and the removed part stays removed."""
    g = row()
    start = Similarity(yaw_rotation(0.0), [0.0, 5.0, 0.0])
    e = edit("delete", Sphere((3, 5, 0), 0.5), frame="world")  # asset x = 3 at the start
    # Moving the asset and its world-frame region together selects the same Gaussians.
    moved = Similarity(yaw_rotation(90.0), [7.0, 0.0, 1.0])
    e_moved = edit("delete", Sphere(tuple(moved.apply(np.array([3.0, 0.0, 0.0]))), 0.5), frame="world")
    edited = apply_edits(g, [e], start)
    assert xs(edited) == xs(apply_edits(g, [e_moved], moved)) == [0.0, 1.0, 2.0, 4.0]
    # Walk the edited asset from its start to `moved`: the gap travels along.
    motion = KeyedMotion(np.array([0.0, 2.0]), np.array([start.translation, moved.translation]),
                         np.array([0.0, 90.0]), np.array([1.0, 1.0]))
    world = World({"hero": Asset("hero", edited, motion=motion)})
    for t, place in [(0.0, start), (2.0, moved)]:
        got = world.compose(t).means.numpy()
        np.testing.assert_allclose(got, place.apply(edited.means.numpy()), atol=1e-9)
        gap = place.apply(np.array([3.0, 0.0, 0.0]))
        assert np.linalg.norm(got - gap, axis=1).min() > 0.9
