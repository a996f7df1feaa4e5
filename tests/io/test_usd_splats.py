"""Gaussians as USD ParticleField3DGaussianSplat prims: the schema's conventions both ways, the
half-precision and missing attributes, the stage's axes and units, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_gaussians

pxr = pytest.importorskip("pxr")

from splatfilm.errors import SplatfilmError  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians  # noqa: E402
from splatfilm.io.usd_splats import read_usd_splats  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402


@pytest.mark.parametrize("name", ["a.usda", "a.usdc", "a.usd"])
def test_save_and_load_round_trip(tmp_path, name):
    g = random_gaussians(40, 3, dtype=torch.float32, seed=2)
    save_gaussians(tmp_path / name, g)
    h = load_gaussians(tmp_path / name)
    np.testing.assert_array_equal(h.means.numpy(), g.means.numpy())
    np.testing.assert_array_equal(h.sh.numpy(), g.sh.numpy())
    q = g.quats / g.quats.norm(dim=1, keepdim=True)
    np.testing.assert_allclose(h.quats.numpy(), q.numpy(), atol=2e-7)
    np.testing.assert_allclose(h.scales.numpy(), g.scales.numpy(), atol=2e-6)
    np.testing.assert_allclose(torch.sigmoid(h.opacities).numpy(), torch.sigmoid(g.opacities).numpy(), rtol=1e-6)
    save_gaussians(tmp_path / ("b" + name[1:]), g, sh_degree=1)
    assert load_gaussians(tmp_path / ("b" + name[1:])).sh_degree == 1


def test_sh_degree_4_round_trips(tmp_path):
    """gsplat's highest SH degree: 25 coefficients a particle, striped by the degree."""
    g = random_gaussians(30, 4, dtype=torch.float32, seed=4)
    save_gaussians(tmp_path / "d4.usda", g)
    h = load_gaussians(tmp_path / "d4.usda")
    assert h.sh_degree == 4
    np.testing.assert_array_equal(h.sh.numpy(), g.sh.numpy())


def test_other_writers_half_arrays_defaults_and_a_y_up_stage(tmp_path):
    from pxr import Gf, Usd, UsdGeom, UsdVol, Vt

    path = tmp_path / "other.usda"
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    xf = UsdGeom.Xform.Define(stage, "/asset")
    xf.AddTranslateOp().Set(Gf.Vec3d(0.0, 100.0, 0.0))  # 1 m up, in centimetres, Y up
    field = UsdVol.ParticleField3DGaussianSplat.Define(stage, "/asset/splats")
    field.CreatePositionshAttr(Vt.Vec3hArray([Gf.Vec3h(1.0, 2.0, 3.0), Gf.Vec3h(0.5, 0.0, 0.0)]))
    field.CreateOpacitiesAttr(Vt.FloatArray([0.25, 0.5, 0.75]))  # too long: cut to the positions
    field.CreateScalesAttr(Vt.Vec3fArray([Gf.Vec3f(2.0)]))  # too short: ignored (unit scale)
    field.CreateRadianceSphericalHarmonicsDegreeAttr(0)
    stage.Save()
    g = read_usd_splats(path)
    np.testing.assert_allclose(g.means.numpy(), [[1, 2, 3], [0.5, 0, 0]])
    np.testing.assert_allclose(torch.sigmoid(g.opacities).numpy(), [0.25, 0.5], rtol=1e-6)
    np.testing.assert_allclose(g.scales.numpy(), 0.0)
    np.testing.assert_allclose(g.quats.numpy(), [[1, 0, 0, 0]] * 2)
    np.testing.assert_allclose(g.sh0.numpy(), 0.0)  # no coefficients: a grey 0.5 DC term
    # In the world: Y up turns Z up, centimetres become metres.
    w = read_usd_splats(path, world=True)
    np.testing.assert_allclose(w.means.numpy(), [[0.01, -0.03, 1.02], [0.005, 0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(w.scales.numpy(), np.log(0.01), atol=1e-6)


def test_errors_are_one_line(tmp_path):
    missing = tmp_path / "none.usda"
    with pytest.raises(SplatfilmError, match="no such file"):
        load_gaussians(missing)
    broken = tmp_path / "broken.usdc"
    broken.write_bytes(b"not a crate file")
    with pytest.raises(SplatfilmError) as e:
        load_gaussians(broken)
    assert str(broken) in str(e.value) and "\n" not in str(e.value)
    g = random_gaussians(3, 0, dtype=torch.float32)
    save_gaussians(tmp_path / "one.usda", g)
    with pytest.raises(SplatfilmError, match=r"no Gaussian splat prim '/nope'.*splat prims: /Gaussians"):
        read_usd_splats(tmp_path / "one.usda", prim="/nope")
    g.means[0, 0] = float("inf")
    with pytest.raises(SplatfilmError, match="non-finite"):
        save_gaussians(tmp_path / "bad.usda", g)


def test_extent_holds_what_the_gaussians_draw(tmp_path):
    """A viewer frames and culls a prim by its extent (UsdGeom.BBoxCache): it must hold each
    Gaussian out to where it stops drawing, not only the centres (it used to)."""
    from pxr import Usd, UsdGeom

    quarter_turn_z = [np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)]  # the long axis turned onto y: the box follows
    g = Gaussians.from_activated(
        torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
        torch.tensor([[1.0, 0.0, 0.0, 0.0], quarter_turn_z, [1.0, 0.0, 0.0, 0.0]]),
        torch.tensor([[0.1, 0.1, 0.1], [0.5, 0.01, 0.02], [1.0, 1.0, 1.0]]),
        torch.tensor([0.99, 0.99, 0.5 / 255]),  # the third is too faint to draw anything
        colors=torch.full((3, 3), 0.5))
    path = tmp_path / "g.usda"
    save_gaussians(path, g)
    stage = Usd.Stage.Open(str(path))
    box = UsdGeom.BBoxCache(Usd.TimeCode.Default(), ["default"]).ComputeLocalBound(stage.GetDefaultPrim()).GetRange()
    k = np.sqrt(2 * np.log(255 * 0.99))  # 3.33 sigma capped at 3
    assert k > 3
    np.testing.assert_allclose(box.GetMin(), [-0.3, -1.5, -0.3], atol=1e-6)
    np.testing.assert_allclose(box.GetMax(), [1.03, 2.0, 0.3], atol=1e-6)


def test_sh_coefficients_are_the_schemas_attribute_not_a_primvar(tmp_path):
    """ParticleField3DGaussianSplat's `radiance:sphericalHarmonicsCoefficients` is no primvar: the
    schema stripes it by (degree + 1)^2 per particle. It used to carry primvar metadata
    (interpolation "vertex", elementSize) outside the `primvars:` namespace, where no primvar
    reader looks and the schema says nothing of it."""
    from pxr import Usd, UsdVol

    save_gaussians(tmp_path / "g.usda", random_gaussians(5, 2, dtype=torch.float32, seed=1))
    stage = Usd.Stage.Open(str(tmp_path / "g.usda"))
    field = UsdVol.ParticleField3DGaussianSplat(stage.GetDefaultPrim())
    definition = Usd.SchemaRegistry().FindConcretePrimDefinition("ParticleField3DGaussianSplat")
    for name in ("radiance:sphericalHarmonicsCoefficients", "radiance:sphericalHarmonicsDegree"):
        assert name in definition.GetPropertyNames()  # splatfilm writes the schema's names
    coeffs = field.GetRadianceSphericalHarmonicsCoefficientsAttr()
    assert coeffs.HasAuthoredValue() and len(coeffs.Get()) == 5 * 9
    assert not coeffs.HasAuthoredMetadata("interpolation") and not coeffs.HasAuthoredMetadata("elementSize")
    stray = [a.GetName() for prim in stage.Traverse() for a in prim.GetAuthoredAttributes()
             if a.HasAuthoredMetadata("interpolation") and not a.GetName().startswith("primvars:")]
    assert not stray


def test_a_usd_output_whose_path_is_not_utf8_is_refused_in_one_line(tmp_path, capsys):
    """USD keeps layer names as UTF-8: `import` to "o2 caf\\xe9.usda" (a Latin-1 name) was a
    UnicodeEncodeError traceback from Layer.Export."""
    import os

    from helpers import cli_error

    save_gaussians(tmp_path / "in.ply", random_gaussians(5, dtype=torch.float32))
    out = tmp_path / os.fsdecode(b"o2 caf\xe9.usda")
    err = cli_error(capsys, ["import", tmp_path / "in.ply", "-o", out])
    assert err.endswith("USD needs a UTF-8 path"), err
    assert not out.exists()
