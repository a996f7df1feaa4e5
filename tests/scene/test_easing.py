"""Easing curves: the shots' eased transitions and the characters' smoothstep."""

from __future__ import annotations

import numpy as np
import pytest

from splatfilm.scene.easing import ease_curve, smoothstep


def test_ease_curve_ends_and_monotone():
    x = np.linspace(0, 1, 1001)
    for ein, eout in ((0, 0), (1, 1), (0.5, 0), (0, 1), (0.3, 0.8)):
        h = ease_curve(x, ein, eout)
        assert h[0] == 0.0 and h[-1] == 1.0
        assert np.all(np.diff(h) >= 0)
        # Slopes at the ends: (1 - ease_out) at the start, (1 - ease_in) at the end.
        assert (h[1] - h[0]) / 1e-3 == pytest.approx(1 - eout, abs=5e-3)
        assert (h[-1] - h[-2]) / 1e-3 == pytest.approx(1 - ein, abs=5e-3)
    np.testing.assert_allclose(ease_curve(x), x)
    # The characters' smoothstep is the fully eased curve (each keeps its own rounding).
    np.testing.assert_allclose(smoothstep(x), ease_curve(x, 1, 1), rtol=0, atol=1e-15)
    assert smoothstep(-0.5) == 0.0 and smoothstep(1.5) == 1.0 and isinstance(smoothstep(0.25), float)
