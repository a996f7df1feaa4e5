"""INRIA PLY reading and writing: round trips, interop with gsplat / 3DGS / nerfstudio layouts, errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import float32_nbytes, traced_peak

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import C0
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.io.ply import ply_header, read_ply, write_compressed_ply, write_ply

FIELDS = ("means", "quats", "scales", "opacities", "sh0", "shN")
NERFSTUDIO_PC = Path("/work/shared/fixtures/nerfstudio/sparse_pc.ply")


def random_gaussians(n: int = 50, degree: int = 3, seed: int = 0, dtype=torch.float32) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    k = (degree + 1) ** 2 - 1
    return Gaussians(r(n, 3), r(n, 4), r(n, 3) - 3, r(n) + 1, r(n, 1, 3), 0.3 * r(n, k, 3))


def assert_bit_equal(a: Gaussians, b: Gaussians) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == torch.float32, name
        assert x.shape == y.shape, name
        assert torch.equal(x, y), name


def inria_columns(g: Gaussians, normals: bool = True) -> list[tuple[str, np.ndarray]]:
    """(name, values) in the INRIA / 3DGS save_ply order, f_rest channel-major."""
    n, k = len(g), g.shN.shape[1]
    cols = [("x", g.means[:, 0]), ("y", g.means[:, 1]), ("z", g.means[:, 2])]
    if normals:
        cols += [(f"n{a}", torch.zeros(n)) for a in "xyz"]
    cols += [(f"f_dc_{i}", g.sh0[:, 0, i]) for i in range(3)]
    rest = g.shN.permute(0, 2, 1).reshape(n, 3 * k)
    cols += [(f"f_rest_{i}", rest[:, i]) for i in range(3 * k)]
    cols += [("opacity", g.opacities)]
    cols += [(f"scale_{i}", g.scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", g.quats[:, i]) for i in range(4)]
    return [(name, np.asarray(v.numpy(), dtype=np.float32)) for name, v in cols]


def make_ply(path: Path, elements, fmt: str = "binary_little_endian", comments=(), newline: str = "\n") -> Path:
    """A test-side PLY writer, independent of ours.

    elements: [(name, count, [(prop_name, ply_type, values)])]; a list property is
    (prop_name, ("list", count_type, item_type), [row arrays]).
    """
    np_types = {"char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
                "float": "f4", "double": "f8", "uint8": "u1", "int32": "i4", "float32": "f4", "float64": "f8"}
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    head = ["ply", f"format {fmt} 1.0", *comments]
    body = bytearray()
    text_rows: list[str] = []
    for name, count, props in elements:
        head.append(f"element {name} {count}")
        for pname, ptype, _ in props:
            if isinstance(ptype, tuple):
                head.append(f"property list {ptype[1]} {ptype[2]} {pname}")
            else:
                head.append(f"property {ptype} {pname}")
        for i in range(count):
            row_text = []
            for pname, ptype, values in props:
                if isinstance(ptype, tuple):
                    items = np.asarray(values[i])
                    if order:
                        body += np.array([len(items)], dtype=order + np_types[ptype[1]]).tobytes()
                        body += items.astype(order + np_types[ptype[2]]).tobytes()
                    row_text += [str(len(items))] + [repr(v.item()) for v in items]
                else:
                    v = np.asarray(values[i])
                    if order:
                        body += v.astype(order + np_types[ptype]).tobytes()
                    row_text.append(repr(v.item()))
            text_rows.append(" ".join(row_text))
    head.append("end_header")
    data = (newline.join(head) + newline).encode()
    data += bytes(body) if order else (newline.join(text_rows) + newline).encode()
    path.write_bytes(data)
    return path


def vertex(cols, types=None):
    """[(name, type, values)] for make_ply from (name, values) columns (default type float)."""
    types = types or {}
    return [(name, types.get(name, "float"), values) for name, values in cols]


# ---- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_round_trip_is_bit_exact(tmp_path, degree):
    g = random_gaussians(37, degree, seed=degree)
    path = tmp_path / "scene.ply"
    write_ply(path, g)
    h = read_ply(path)
    assert h.sh_degree == degree
    assert_bit_equal(g, h)
    # The file is exactly header + N * (17 + 3K) float32.
    k = (degree + 1) ** 2 - 1
    assert path.stat().st_size == len(ply_header(37, degree)) + 37 * (17 + 3 * k) * 4


def test_round_trip_keeps_unnormalised_quats_and_extreme_values(tmp_path):
    g = random_gaussians(8, 1)
    g.quats[0] = torch.tensor([3.0, -4.0, 0.5, 0.0])
    g.scales[1] = torch.tensor([-30.0, 20.0, 0.0])
    g.opacities[2] = -40.0
    write_ply(tmp_path / "a.ply", g)
    assert_bit_equal(g, read_ply(tmp_path / "a.ply"))


def test_float64_input_is_written_as_float32_and_read_as_float32(tmp_path):
    g64 = random_gaussians(10, 2, dtype=torch.float64)
    write_ply(tmp_path / "a.ply", g64)
    h = read_ply(tmp_path / "a.ply")
    assert_bit_equal(g64.to(dtype=torch.float32), h)


def test_empty_round_trip(tmp_path):
    write_ply(tmp_path / "empty.ply", Gaussians.empty(2))
    h = read_ply(tmp_path / "empty.ply")
    assert len(h) == 0 and h.sh_degree == 2


def test_write_sh_degree_truncates_and_pads(tmp_path):
    g = random_gaussians(20, 3)
    write_ply(tmp_path / "d1.ply", g, sh_degree=1)
    h = read_ply(tmp_path / "d1.ply")
    assert h.sh_degree == 1
    assert torch.equal(h.shN, g.shN[:, :3])
    assert torch.equal(h.sh0, g.sh0)
    write_ply(tmp_path / "d0.ply", g, sh_degree=0)
    assert read_ply(tmp_path / "d0.ply").shN.shape == (20, 0, 3)
    g0 = random_gaussians(20, 0)
    write_ply(tmp_path / "d2.ply", g0, sh_degree=2)
    h2 = read_ply(tmp_path / "d2.ply")
    assert h2.sh_degree == 2 and torch.count_nonzero(h2.shN) == 0
    with pytest.raises(SplatfilmError, match="sh_degree"):
        write_ply(tmp_path / "bad.ply", g, sh_degree=7)


def test_written_header_is_the_inria_header(tmp_path):
    g = random_gaussians(3, 1)
    write_ply(tmp_path / "a.ply", g)
    data = (tmp_path / "a.ply").read_bytes()
    names = [name for name, _ in inria_columns(g)]
    expected = "ply\nformat binary_little_endian 1.0\nelement vertex 3\n"
    expected += "".join(f"property float {n}\n" for n in names) + "end_header\n"
    assert data.startswith(expected.encode())
    # And the body is those columns, float32 little-endian, row by row.
    body = np.frombuffer(data[len(expected):], dtype="<f4").reshape(3, len(names))
    np.testing.assert_array_equal(body, np.stack([v for _, v in inria_columns(g)], axis=1))


# ---- interop with gsplat's exporter --------------------------------------------------------


def _gsplat_ply_bytes(g: Gaussians) -> bytes:
    from gsplat import export_splats

    return export_splats(g.means, g.scales, g.quats, g.opacities, g.sh0, g.shN, format="ply")


def _split_header(data: bytes) -> tuple[list[str], bytes]:
    end = data.index(b"end_header\n") + len(b"end_header\n")
    return data[:end].decode().splitlines(), data[end:]


@pytest.mark.parametrize("degree", [0, 1, 3, 4])
def test_reads_gsplat_export(tmp_path, degree):
    g = random_gaussians(64, degree, seed=10 + degree)
    path = tmp_path / "gsplat.ply"
    path.write_bytes(_gsplat_ply_bytes(g))
    assert_bit_equal(g, read_ply(path))


@pytest.mark.parametrize("degree", [0, 3])
def test_our_file_matches_gsplat_export_except_for_normals(tmp_path, degree):
    g = random_gaussians(40, degree, seed=20 + degree)
    ref_lines, ref_body = _split_header(_gsplat_ply_bytes(g))
    write_ply(tmp_path / "ours.ply", g)
    our_lines, our_body = _split_header((tmp_path / "ours.ply").read_bytes())
    normals = {"property float nx", "property float ny", "property float nz"}
    assert [ln for ln in our_lines if ln not in normals] == ref_lines
    ours = np.frombuffer(our_body, dtype="<f4").reshape(len(g), -1)
    theirs = np.frombuffer(ref_body, dtype="<f4").reshape(len(g), -1)
    np.testing.assert_array_equal(ours[:, 3:6], 0.0)
    assert np.delete(ours, [3, 4, 5], axis=1).tobytes() == theirs.tobytes()


@pytest.mark.parametrize("degree", [0, 3, 4])
def test_reads_gsplat_compressed_ply(tmp_path, degree):
    from gsplat import export_splats
    from gsplat.exporter import sort_centers

    n = 700  # three chunks of up to 256
    g = random_gaussians(n, degree, seed=30)
    g.opacities[:] = g.opacities.abs() + 0.5  # gsplat drops splats with opacity below 1/255
    g.shN.clamp_(-3.9, 3.9)
    path = tmp_path / "scene.compressed.ply"
    export_splats(g.means, g.scales, g.quats, g.opacities, g.sh0, g.shN, format="ply_compressed", save_to=str(path))
    h = read_ply(path)
    ref = g.select(sort_centers(g.means, torch.arange(n)))  # gsplat stores splats in Morton order
    assert len(h) == n and h.sh_degree == degree
    # Quantisation: positions / log scales to 10-11 bits of each chunk's range, colours to 8 bits.
    span = (g.means.max(0).values - g.means.min(0).values).max()
    assert (h.means - ref.means).abs().max() < span / 500
    assert (h.scales - ref.scales).abs().max() < 0.05
    assert (h.base_colors - ref.base_colors).abs().max() < 0.02
    assert (h.activated_opacities - ref.activated_opacities).abs().max() < 1.5 / 255
    assert (h.activated_quats * ref.activated_quats).sum(-1).abs().min() > 0.999
    if degree:
        assert (h.shN - ref.shN).abs().max() < 8 / 256 + 1e-6


def matched(h: Gaussians, g: Gaussians) -> Gaussians:
    """g's Gaussians in the order of h (decoded from a compressed PLY, which reorders them): of
    the 8 g Gaussians nearest each h Gaussian's position, the one closest in log scale, colour
    and opacity (a fitted scene has Gaussians closer together than a quantisation step),
    checked to be one to one."""
    from scipy.spatial import cKDTree

    _, near = cKDTree(g.means.double().numpy()).query(h.means.double().numpy(), k=min(8, len(g)))
    near = torch.from_numpy(near.reshape(len(h), -1))

    def features(x: Gaussians) -> torch.Tensor:
        return torch.cat([x.scales.clamp(-20, 20), x.sh0.reshape(-1, 3), x.activated_opacities[:, None]], 1).double()

    cost = (features(g)[near] - features(h)[:, None]).abs().sum(-1)
    idx = near.gather(1, cost.argmin(1, keepdim=True))[:, 0].numpy()
    assert len(np.unique(idx)) == len(g), "decoded positions do not pick out the Gaussians one to one"
    return g.select(torch.from_numpy(idx))


def quantisation_errors(h: Gaussians, ref: Gaussians) -> dict[str, float]:
    """The largest error of each property of h (read from a compressed PLY) against ref (the same
    Gaussians, same order) as a share of its quantisation step in h's chunk of 256: positions and
    log scales 11/10/11 bits of the chunk's range, colours 8 bits of it, opacity 8 bits of [0,1],
    SH 8 bits of [-4, 4]; a value rounded to the nearest step is within 0.5 of it."""
    n = len(h)
    chunk = torch.arange(n) // 256
    steps = torch.tensor([2047.0, 1023.0, 2047.0], dtype=torch.float64)

    def share(ours: torch.Tensor, theirs: torch.Tensor, levels) -> float:
        ours, theirs = ours.double().reshape(n, -1), theirs.double().reshape(n, -1)
        lo = torch.full((int(chunk.max()) + 1, ours.shape[1]), math.inf, dtype=torch.float64)
        hi = -lo
        lo = lo.scatter_reduce(0, chunk[:, None].expand_as(ours), ours, "amin")
        hi = hi.scatter_reduce(0, chunk[:, None].expand_as(ours), ours, "amax")
        step = (hi - lo)[chunk] / levels
        err = (ours - theirs).abs() - 1e-6 * (1 + theirs.abs())  # float32 rounding
        return float((err / step.clamp_min(1e-12)).clamp_min(0).max())

    out = {"means": share(h.means, ref.means, steps),
           "scales": share(h.scales, ref.scales.clamp(-20, 20), steps),
           "colours": share(0.5 + C0 * h.sh0, 0.5 + C0 * ref.sh0, 255.0),  # unclamped, as stored
           "opacities": float(((h.activated_opacities - ref.activated_opacities).abs() * 255).max()),
           "quats": float(1 - (h.activated_quats * ref.activated_quats).sum(-1).abs().min())}
    if h.sh_degree:
        k = h.shN.shape[1]
        out["shN"] = float(((h.shN - ref.shN[:, :k]).abs() * 32).max())
    return out


def chunk_extent(h: Gaussians) -> float:
    """The mean diagonal of h's chunks of 256 (in file order) over that of all of h."""
    diag = lambda m: float(torch.linalg.norm(m.max(0).values - m.min(0).values))  # noqa: E731
    return sum(diag(h.means[i : i + 256]) for i in range(0, len(h), 256)) / -(-len(h) // 256) / diag(h.means)


@pytest.mark.parametrize("degree", [0, 3, 4])
def test_writes_compressed_ply(tmp_path, degree):
    """`*.compressed.ply` is written in SuperSplat's layout and read back within its quantisation
    steps, SH degree 3 at most."""
    gen = torch.Generator().manual_seed(40)
    g = random_gaussians(729, degree, seed=40)  # three chunks, the last part full
    grid = torch.stack(torch.meshgrid(*[torch.arange(9.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    g.means[:] = 0.1 * grid + 0.02 * torch.rand(729, 3, generator=gen)  # apart, so positions tell them
    g.scales[0, 0] = -40.0  # beyond the format's clamp of log scales to [-20, 20]
    g.quats[1] = 0.0
    path = tmp_path / "scene.compressed.ply"
    save_gaussians(path, g)
    header = path.read_bytes()[:2000]
    assert b"element chunk 3\n" in header and b"property uint packed_rotation" in header
    assert (b"element sh 729" in header) == (degree > 0)
    h = read_ply(path)
    assert len(h) == 729 and h.sh_degree == min(degree, 3)
    ref = matched(h, g)
    ref.quats[(ref.quats == 0).all(-1)] = torch.tensor([1.0, 0, 0, 0])  # a zero quaternion is the identity
    errors = quantisation_errors(h, ref)
    assert max(errors[k] for k in ("means", "scales", "colours", "opacities")) <= 0.5 + 1e-3, errors
    assert errors["quats"] < 1e-4 and errors.get("shN", 0) <= 1.0, errors


def test_compressed_ply_edge_cases(tmp_path):
    """No Gaussians, one, all at one point: written and read back; NaN refused in one line."""
    for n in (0, 1, 300):
        g = random_gaussians(max(n, 1), 1, seed=n).select(torch.arange(n))
        if n == 300:
            g.means[:] = torch.tensor([1.0, 2.0, 3.0])
        write_compressed_ply(tmp_path / "a.compressed.ply", g)
        h = read_ply(tmp_path / "a.compressed.ply")
        assert len(h) == n and h.sh_degree == 1
        assert torch.allclose(h.means, g.means, atol=1e-6)  # one Gaussian or one point: exact
    g = random_gaussians(5, 0)
    g.scales[2, 1] = math.nan
    with pytest.raises(SplatfilmError) as err:
        write_compressed_ply(tmp_path / "b.compressed.ply", g)
    assert "1 in scale_1" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "b.compressed.ply").exists()


def test_compressed_ply_as_good_as_gsplats(tmp_path):
    """The bundled hero, written by splatfilm and by gsplat's exporter: both decode within the
    format's steps, ours no worse than gsplat's, in chunks as tight (Morton order)."""
    from gsplat import export_splats

    g = read_ply(Path(__file__).parents[2] / "scenes/character/fitted/hero.ply")
    g.opacities.clamp_(min=-5.0)  # gsplat drops splats with opacity below 1/255
    ours, theirs = tmp_path / "ours.compressed.ply", tmp_path / "gsplat.compressed.ply"
    write_compressed_ply(ours, g)
    export_splats(g.means, g.scales, g.quats, g.opacities, g.sh0, g.shN, format="ply_compressed",
                  save_to=str(theirs))
    h, h_gsplat = read_ply(ours), read_ply(theirs)
    assert len(h) == len(h_gsplat) == len(g) and h.sh_degree == h_gsplat.sh_degree == g.sh_degree
    e, e_gsplat = quantisation_errors(h, matched(h, g)), quantisation_errors(h_gsplat, matched(h_gsplat, g))
    assert max(e[k] for k in ("means", "scales", "colours", "opacities")) <= 0.5 + 1e-3, e
    assert e["quats"] < 1e-4 and e["shN"] <= 1.0, e
    for k in e:
        assert e[k] <= max(e_gsplat[k], 0.5 + 1e-3), (k, e, e_gsplat)
    assert chunk_extent(h) <= chunk_extent(h_gsplat) * 1.05 and chunk_extent(h) < 0.3  # in file order: ~1


# ---- layouts of other writers ----------------------------------------------------------------


def test_reads_original_3dgs_layout_written_like_plyfile(tmp_path):
    """3DGS save_ply: numpy structured array of f4 (with normals), written by plyfile."""
    g = random_gaussians(25, 3, seed=3)
    cols = inria_columns(g)
    elements = np.empty(len(g), dtype=[(name, "f4") for name, _ in cols])
    for name, values in cols:
        elements[name] = values
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 25\n"
    header += "".join(f"property float {name}\n" for name, _ in cols) + "end_header\n"
    (tmp_path / "point_cloud.ply").write_bytes(header.encode() + elements.tobytes())
    assert_bit_equal(g, read_ply(tmp_path / "point_cloud.ply"))


def test_reads_big_endian_all_float(tmp_path):
    g = random_gaussians(11, 2, seed=8)
    cols = inria_columns(g)
    header = "ply\nformat binary_big_endian 1.0\nelement vertex 11\n"
    header += "".join(f"property float {name}\n" for name, _ in cols) + "end_header\n"
    body = np.stack([v for _, v in cols], axis=1).astype(">f4").tobytes()
    (tmp_path / "be.ply").write_bytes(header.encode() + body)
    assert_bit_equal(g, read_ply(tmp_path / "be.ply"))


def test_reads_nerfstudio_rgb_color_mode(tmp_path):
    """ns-export gaussian-splat --ply-color-mode rgb: uchar red green blue instead of f_dc."""
    g = random_gaussians(12, 0, seed=4)
    rgb = (g.base_colors.clamp(0, 1) * 255).to(torch.uint8)
    cols = [c for c in inria_columns(g) if not c[0].startswith("f_dc")]
    cols[6:6] = [("red", rgb[:, 0].numpy()), ("green", rgb[:, 1].numpy()), ("blue", rgb[:, 2].numpy())]
    path = make_ply(tmp_path / "splat.ply", [("vertex", 12, vertex(cols, {"red": "uchar", "green": "uchar", "blue": "uchar"}))])
    h = read_ply(path)
    torch.testing.assert_close(h.base_colors, rgb.float() / 255, atol=1e-6, rtol=0)
    assert torch.equal(h.means, g.means) and torch.equal(h.opacities, g.opacities)


def test_reads_ascii_with_comments_and_crlf(tmp_path):
    g = random_gaussians(6, 1, seed=5)
    # repr() of float32 -> python float prints the exact float32 value.
    path = make_ply(tmp_path / "a.ply", [("vertex", 6, vertex(inria_columns(g)))], fmt="ascii",
                    comments=["comment written by hand", "obj_info some info"], newline="\r\n")
    assert_bit_equal(g, read_ply(path))


@pytest.mark.parametrize("fmt", ["binary_big_endian", "binary_little_endian", "ascii"])
def test_any_order_any_type_extra_properties_and_elements(tmp_path, fmt):
    g = random_gaussians(9, 2, seed=6)
    cols = inria_columns(g, normals=False)
    rng = np.random.default_rng(0)
    cols = [cols[i] for i in rng.permutation(len(cols))]
    types = {"x": "double", "opacity": "double", "rot_0": "float32", "scale_1": "float64"}
    props = vertex(cols, types)
    props.insert(3, ("red", "uchar", np.arange(9, dtype=np.uint8)))
    props.insert(0, ("label", "int", np.arange(9) - 4))
    props.append(("confidence", "float", np.linspace(0, 1, 9)))
    before = ("camera", 2, [("id", "int", [1, 2]), ("fov", "float", [0.5, 0.7])])
    faces_before = ("edge", 2, [("verts", ("list", "uchar", "int"), [[0, 1], [1, 2, 3]]), ("w", "short", [1, 2])])
    after = ("face", 3, [("vertex_indices", ("list", "uchar", "int"), [[0, 1, 2], [2, 3, 4, 5], [1]])])
    path = make_ply(tmp_path / "mixed.ply", [before, faces_before, ("vertex", 9, props), after], fmt=fmt,
                    comments=["comment mixed file"])
    h = read_ply(path)
    # Doubles of float32 values convert back exactly.
    assert_bit_equal(g, h)


def test_integer_typed_properties(tmp_path):
    cols = [("x", np.array([1, 2])), ("y", np.array([-3, 4])), ("z", np.array([0, 7]))]
    cols += [(f"f_dc_{i}", np.zeros(2)) for i in range(3)] + [("opacity", np.array([0, 1]))]
    cols += [(f"scale_{i}", np.array([-2, -1])) for i in range(3)]
    cols += [(f"rot_{i}", np.array([1, 0]) if i == 0 else np.array([0, 1])) for i in range(4)]
    types = {"x": "int", "y": "short", "z": "uchar", "opacity": "char", "rot_0": "uint", "rot_1": "ushort"}
    h = read_ply(make_ply(tmp_path / "ints.ply", [("vertex", 2, vertex(cols, types))]))
    assert h.means.dtype == torch.float32
    assert h.means.tolist() == [[1, -3, 0], [2, 4, 7]]
    assert h.quats.tolist() == [[1, 0, 0, 0], [0, 1, 1, 1]]


def test_missing_f_rest_is_degree_0(tmp_path):
    g = random_gaussians(5, 0)
    path = make_ply(tmp_path / "d0.ply", [("vertex", 5, vertex(inria_columns(g)))])
    h = read_ply(path)
    assert h.sh_degree == 0 and h.shN.shape == (5, 0, 3)


def test_f_rest_in_header_order_does_not_matter(tmp_path):
    """3DGS's load_ply sorts f_rest by the number in the name; so do we."""
    g = random_gaussians(4, 1)
    cols = inria_columns(g)
    rest = [c for c in cols if c[0].startswith("f_rest")][::-1]
    cols = [c for c in cols if not c[0].startswith("f_rest")] + rest
    assert_bit_equal(g, read_ply(make_ply(tmp_path / "r.ply", [("vertex", 4, vertex(cols))])))


def test_degree_5_is_refused_when_read(tmp_path):
    """Degree 4 is gsplat's highest and splatfilm's; a degree-5 PLY (105 f_rest) would fail in
    the renderer and in every rotation (`transformed`) far from the file: refused at the door."""
    rng = np.random.default_rng(0)
    path = tmp_path / "d5.ply"
    path.write_bytes(ply_header(3, 5) + rng.normal(size=(3, 17 + 3 * 35)).astype("<f4").tobytes())
    raises_one_line(path, "SH degree 5: splatfilm renders and rotates SH up to degree 4")


def test_mip_splatting_filter_3d_is_fused_as_its_save_fused_ply_does(tmp_path, capsys):
    """Mip-Splatting's save_ply keeps `filter_3D` apart; read without it, its Gaussians are drawn
    too sharp and too opaque. Fused: scale sqrt(s^2 + f^2), opacity times sqrt(det S^2 / det(S^2 + f^2 I))."""
    from splatfilm.io.gaussian_files import load_gaussians

    g = random_gaussians(6, 1, seed=11)
    g.scales[0] = math.log(0.02)
    g.opacities[0] = 1.5
    g.opacities[1] = 40.0  # nearly opaque: fused, it must stay finite
    cols = inria_columns(g)
    filt = np.array([0.05, 0.05, 0.01, 0.2, 0.0, 0.003], np.float32)
    path = make_ply(tmp_path / "mip.ply", [("vertex", 6, vertex(cols + [("filter_3D", filt)]))])
    notes: list[str] = []
    h = read_ply(path, notes)
    # Mip-Splatting's own arithmetic (float32 torch): get_scaling_with_3D_filter, get_opacity_with_3D_filter.
    f = torch.from_numpy(filt)[:, None]
    s = torch.exp(g.scales)
    want_scales = torch.log(torch.sqrt(torch.square(s) + torch.square(f)))
    coef = torch.sqrt(torch.square(s).prod(dim=1) / (torch.square(s) + torch.square(f)).prod(dim=1))
    p = torch.sigmoid(g.opacities) * coef
    want_opacities = torch.log(p / (1 - p))
    assert math.isclose(math.exp(h.scales[0, 0].item()), math.hypot(0.02, 0.05), rel_tol=1e-6)
    torch.testing.assert_close(h.scales, want_scales, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h.opacities[2:], want_opacities[2:], atol=1e-5, rtol=1e-5)
    assert math.isclose(torch.sigmoid(h.opacities[0]).item(), p[0].item(), rel_tol=1e-6)
    assert 0 < torch.sigmoid(h.opacities[1]).item() < 1 and math.isfinite(h.opacities[1].item())
    # A Gaussian without a filter is as stored, bit for bit; the rest of each Gaussian too.
    assert torch.equal(h.scales[4], g.scales[4]) and torch.equal(h.opacities[4], g.opacities[4])
    for name in ("means", "quats", "sh0", "shN"):
        assert torch.equal(getattr(h, name), getattr(g, name)), name
    assert len(notes) == 1 and "filter_3D" in notes[0] and "mip.ply" in notes[0]
    load_gaussians(path)  # the CLI's reader says it on stderr
    assert "filter_3D" in capsys.readouterr().err
    # Trained with Mip-Splatting's 2D filter too: it renders in gsplat's antialiased mode, and
    # `import` records so in the asset's sidecar (it was drawn classic: too sharp, too opaque).
    import json

    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.cli import main

    save_gaussians_plain = make_ply(tmp_path / "plain.ply", [("vertex", 6, vertex(cols))])
    assert asset_rasterize_mode(path) == "antialiased" and asset_rasterize_mode(save_gaussians_plain) == "classic"
    assert main(["import", str(path), "-o", str(tmp_path / "asset.ply")]) == 0
    assert json.loads((tmp_path / "asset.json").read_text())["rasterize_mode"] == "antialiased"


def georeferenced_ply(path: Path, g: Gaussians, shift: tuple[float, float, float], fmt: str) -> np.ndarray:
    """`g` written with double positions moved by `shift`; returns those positions [N,3] float64."""
    xyz = g.means.double().numpy() * 7 + np.array(shift) + 0.123456
    cols = [(k, xyz[:, i]) for i, k in enumerate("xyz")] + inria_columns(g)[3:]
    make_ply(path, [("vertex", len(g), vertex(cols, {"x": "double", "y": "double", "z": "double"}))], fmt=fmt)
    return xyz


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_double_positions_are_kept_to_their_precision_when_read_centred(tmp_path, fmt):
    """A georeferenced splat 4e6 m out: float32 holds its positions to 0.25 m. read_ply_centred
    takes them less an origin in float64 (x_file = means + origin); read_ply rounds as before,
    with a note."""
    from splatfilm.io.ply import read_ply_centred

    g = random_gaussians(40, 1, seed=12)
    xyz = georeferenced_ply(tmp_path / "geo.ply", g, (500000.0, 4000000.0, 310.0), fmt)
    notes: list[str] = []
    h, origin = read_ply_centred(tmp_path / "geo.ply", notes)
    assert origin.dtype == np.float64 and np.all(origin == np.round(origin)) and notes == []
    assert np.abs(origin - xyz.mean(axis=0)).max() < 30
    assert np.abs(h.means.double().numpy() + origin - xyz).max() < 1e-5  # float32 of metres-sized offsets
    for name in ("quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(h, name), getattr(g, name)), name
    plain = read_ply(tmp_path / "geo.ply", notes)
    assert torch.equal(plain.means, torch.from_numpy(xyz.astype(np.float32)))
    assert np.abs(plain.means.double().numpy() - xyz).max() > 0.01
    assert len(notes) == 1 and "stored as double" in notes[0] and "centred" in notes[0]


def test_float32_and_near_double_positions_read_centred_as_read_ply(tmp_path):
    """No origin for float32 positions (read_ply's Gaussians, bit for bit); double positions near
    the origin give no note."""
    from splatfilm.io.ply import read_ply_centred

    g = random_gaussians(9, 2, seed=13)
    write_ply(tmp_path / "a.ply", g)
    h, origin = read_ply_centred(tmp_path / "a.ply")
    assert origin is None
    assert_bit_equal(g, h)
    georeferenced_ply(tmp_path / "near.ply", g, (0.0, 0.0, 0.0), "binary_little_endian")
    notes: list[str] = []
    read_ply(tmp_path / "near.ply", notes)
    assert notes == []


@pytest.mark.parametrize("fmt, most", [("binary_little_endian", 1.6), ("ascii", 3.0)])
def test_reading_holds_no_copies_of_the_file(tmp_path, fmt, most):
    """A 2M-Gaussian degree-3 PLY (496 MB) once peaked at 3.5x its size (the file read whole, a
    gathered table, torch clones), an ASCII one at 11x (a Python object per value). The
    Gaussians themselves are ~0.95x a binary file's size, ~0.4x an ASCII one's."""
    n = 6000 if fmt == "ascii" else 40000
    rng = np.random.default_rng(0)
    names = [name for name, _ in inria_columns(random_gaussians(1, 3))]
    values = rng.normal(size=(n, len(names))).astype(np.float32)
    header = f"ply\nformat {fmt} 1.0\nelement vertex {n}\n" + "".join(f"property float {k}\n" for k in names)
    path = tmp_path / "big.ply"
    with open(path, "wb") as f:
        f.write((header + "end_header\n").encode())
        if fmt == "ascii":
            np.savetxt(f, values, fmt="%.7g")
        else:
            f.write(values.astype("<f4").tobytes())
    size = path.stat().st_size
    g, peak = traced_peak(lambda: read_ply(path))
    assert len(g) == n
    assert peak < most * size, f"peak {peak / size:.2f}x the file's size"



def test_compressed_ply_decodes_without_float64_copies(tmp_path):
    """A 3M-Gaussian degree-3 compressed PLY (184 MB) once peaked at 3.25 GB: every attribute
    gathered and decoded as float64 for the whole file, then a float32 table, then the
    Gaussians (4x their own size). Decoded a block at a time, the peak is the Gaussians and a
    block's temporaries."""
    g = random_gaussians(100_000, 3, dtype=torch.float32)
    path = tmp_path / "big.compressed.ply"
    write_compressed_ply(path, g)
    own = float32_nbytes(g)
    h, peak = traced_peak(lambda: read_ply(path))
    assert len(h) == len(g) and h.sh_degree == 3
    assert peak < 1.6 * own, f"peak {peak / own:.2f}x the Gaussians' own size"

# ---- errors ---------------------------------------------------------------------------------


def raises_one_line(path: Path, match: str, fn=read_ply, *args):
    with pytest.raises(SplatfilmError) as info:
        fn(path, *args)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert path.name in msg, msg
    assert match.lower() in msg.lower(), msg
    return msg


def _good_bytes(n=4, degree=1) -> bytes:
    header = ply_header(n, degree)
    cols = inria_columns(random_gaussians(n, degree))
    return header + np.stack([v for _, v in cols], axis=1).astype("<f4").tobytes()


def test_error_missing_file(tmp_path):
    raises_one_line(tmp_path / "nope.ply", "no such file")


def test_error_folder(tmp_path):
    (tmp_path / "dir.ply").mkdir()
    raises_one_line(tmp_path / "dir.ply", "folder")


def test_error_not_a_ply(tmp_path):
    p = tmp_path / "fake.ply"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    raises_one_line(p, "not a PLY")
    p.write_bytes(b"")
    raises_one_line(p, "not a PLY")


def test_error_truncated(tmp_path):
    p = tmp_path / "short.ply"
    p.write_bytes(_good_bytes()[:-5])
    msg = raises_one_line(p, "truncated")
    assert "vertex" in msg


def test_error_truncated_ascii(tmp_path):
    g = random_gaussians(3, 0)
    p = make_ply(tmp_path / "short.ply", [("vertex", 3, vertex(inria_columns(g)))], fmt="ascii")
    p.write_bytes(p.read_bytes().rsplit(b" ", 3)[0])
    raises_one_line(p, "truncated")


def test_error_no_end_header(tmp_path):
    p = tmp_path / "noend.ply"
    p.write_bytes(_good_bytes().replace(b"end_header\n", b""))
    raises_one_line(p, "end_header")
    p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n")
    raises_one_line(p, "end_header")


def test_error_bad_format_and_header_lines(tmp_path):
    p = tmp_path / "h.ply"
    p.write_bytes(b"ply\nformat binary_middle_endian 1.0\nelement vertex 0\nend_header\n")
    raises_one_line(p, "format")
    p.write_bytes(b"ply\nelement vertex 0\nend_header\n")
    raises_one_line(p, "format")
    p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n0\n")
    raises_one_line(p, "unknown property type")
    p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float x\nend_header\n0 0\n")
    raises_one_line(p, "twice")
    p.write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nend_header\n")
    raises_one_line(p, "no 'vertex' element")


def test_error_missing_properties_are_named(tmp_path):
    g = random_gaussians(3, 0)
    cols = [c for c in inria_columns(g) if c[0] not in ("opacity", "rot_3", "f_dc_1")]
    msg = raises_one_line(make_ply(tmp_path / "m.ply", [("vertex", 3, vertex(cols))]), "missing")
    for name in ("opacity", "rot_3", "f_dc_1"):
        assert name in msg
    assert "scale_0" not in msg


@pytest.mark.skipif(not NERFSTUDIO_PC.exists(), reason="shared nerfstudio fixture not present")
def test_error_point_cloud_from_nerfstudio():
    msg = raises_one_line(NERFSTUDIO_PC, "point cloud")
    assert "opacity" in msg


@pytest.mark.parametrize("count", [1, 10, 12, 46])
def test_error_f_rest_count_is_no_degree(tmp_path, count):
    g = random_gaussians(2, 0)
    cols = inria_columns(g) + [(f"f_rest_{i}", np.zeros(2)) for i in range(count)]
    raises_one_line(make_ply(tmp_path / "r.ply", [("vertex", 2, vertex(cols))]), f"{count} f_rest")


def test_error_f_rest_numbering_gap(tmp_path):
    g = random_gaussians(2, 0)
    cols = inria_columns(g) + [(f"f_rest_{i}", np.zeros(2)) for i in range(10) if i != 4]
    raises_one_line(make_ply(tmp_path / "r.ply", [("vertex", 2, vertex(cols))]), "f_rest_4")


def test_error_non_finite_values_are_counted(tmp_path):
    g = random_gaussians(6, 1)
    g.opacities[[1, 3]] = float("nan")
    g.scales[2, 0] = float("inf")
    cols = inria_columns(g)
    msg = raises_one_line(make_ply(tmp_path / "nan.ply", [("vertex", 6, vertex(cols))]), "3 non-finite")
    assert "2 in opacity" in msg and "1 in scale_0" in msg


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_infinite_opacities_are_alpha_one_and_zero(tmp_path, fmt):
    """splat-transform decodes a compressed PLY's alpha of 255 to an opacity logit of +inf (43%
    of the hero's): read as alpha 1 (and -inf as 0), with a note; NaN is still refused."""
    g = random_gaussians(4, 1)
    g.opacities[1], g.opacities[2] = float("inf"), -float("inf")
    path = make_ply(tmp_path / "inf.ply", [("vertex", 4, vertex(inria_columns(g)))], fmt)
    notes: list[str] = []
    alpha = torch.sigmoid(read_ply(path, notes).opacities)
    assert alpha[1].item() == 1.0 and alpha[2].item() < 1e-8 and torch.isfinite(alpha).all()
    assert torch.equal(alpha[[0, 3]], torch.sigmoid(g.opacities[[0, 3]].float()))
    assert notes == [f"note: {path}: 2 opacities are +-inf (alpha 1 or 0), read as +-20"], notes


def test_error_compressed_ply_without_its_pieces(tmp_path):
    p = tmp_path / "c.ply"
    p.write_bytes(b"ply\nformat ascii 1.0\nelement chunk 1\nproperty float min_x\n"
                  b"element vertex 1\nproperty uint packed_position\nend_header\n0\n5\n")
    msg = raises_one_line(p, "compressed PLY")
    assert "splat-transform" in msg and "packed_rotation" in msg and "more" in msg


def test_write_refuses_non_finite_and_keeps_old_file(tmp_path):
    p = tmp_path / "keep.ply"
    good = random_gaussians(5, 1)
    write_ply(p, good)
    before = p.read_bytes()
    bad = good.clone()
    bad.means[0, 1] = float("nan")
    msg = raises_one_line(p, "1 non-finite", write_ply, bad)
    assert "in y" in msg
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.ply"]


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    p = tmp_path / "sub" / "dir" / "a.ply"
    write_ply(p, random_gaussians(5, 0))
    write_ply(p, random_gaussians(7, 2, seed=1))  # replaces
    assert len(read_ply(p)) == 7
    assert os.listdir(p.parent) == ["a.ply"]
    mode = p.stat().st_mode & 0o777
    assert mode & 0o644 == 0o644 or os.name == "nt"  # not the 0600 of a mkstemp file
    assert math.isclose(read_ply(p).sh0.abs().sum().item(), random_gaussians(7, 2, seed=1).sh0.abs().sum().item())


def test_write_error_is_splatfilm_error(tmp_path):
    (tmp_path / "taken").write_text("a file where a folder should be")
    raises_one_line(tmp_path / "taken" / "a.ply", "is a file, not a folder", write_ply, random_gaussians(2, 0))


def test_compressed_ply_far_negative_logit_writes_without_a_warning(tmp_path):
    """A logit under -709 overflows exp in float64: opacity 0, and no RuntimeWarning on stderr."""
    import warnings

    from splatfilm.io.ply import write_compressed_ply

    n = 3
    g = Gaussians(means=torch.arange(9, dtype=torch.float32).reshape(n, 3), quats=torch.tensor([[1.0, 0, 0, 0]] * n),
                  scales=torch.zeros(n, 3), opacities=torch.tensor([-1000.0, 0.0, 5.0]),
                  sh0=torch.zeros(n, 1, 3), shN=torch.zeros(n, 0, 3))
    path = tmp_path / "a.compressed.ply"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_compressed_ply(path, g)
    assert torch.sigmoid(read_ply(path).opacities).min() < 0.01
