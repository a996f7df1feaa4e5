"""Easing: the curves that shape motion in time, for every layer that eases.

Camera moves and keyframes (shots) ease with `ease_curve`, whose ends take any ease in
[0, 1]; characters (crossfades, foot plants, IK blends, a walker's pace) with `smoothstep`,
the curve both ends fully eased. `smoothstep(u)` is `ease_curve(u, 1, 1)`, the cubic
3u² - 2u³, evaluated as u² (3 - 2u): the same curve to within an ulp, each form keeping its
own rounding so that frames stay bit-identical.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.errors import SplatfilmError


def smoothstep(u: float | np.floating | np.ndarray) -> float | np.floating | np.ndarray:
    """3u² - 2u³ at u clipped to [0, 1]: 0 to 1 starting and stopping at zero speed.

    u: a number or an array (any shape, unitless); returns the same kind. A Python or NumPy
    scalar stays a scalar of its own type inside [0, 1]; clipped, it comes back as the Python
    float 0.0 or 1.0.
    """
    u = np.clip(u, 0.0, 1.0) if isinstance(u, np.ndarray) else min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def ease_curve(x: ArrayLike, ease_in: float = 0.0, ease_out: float = 0.0) -> np.ndarray | float:
    """Monotone time warp of [0,1] onto itself with slowed ends: h(0) = 0, h(1) = 1.

    A cubic Hermite with slope (1 - ease_out) at x = 0 and (1 - ease_in) at x = 1, so
    ease 0 leaves time linear there and ease 1 starts (or stops) at zero speed. For eases in
    [0, 1] both slopes are in [0, 1], inside the Fritsch-Carlson bounds, so h is monotone:
    the camera never runs backwards. (`ease_out` shapes the start because it is how the
    motion *leaves* the previous key; `ease_in` how it *arrives* at the next.) x (unitless,
    the fraction of a transition's time) is clipped to [0, 1]; arrays broadcast.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    a, b = 1.0 - ease_out, 1.0 - ease_in
    x2, x3 = x * x, x * x * x
    # Hermite basis with p0 = 0, p1 = 1, m0 = a, m1 = b.
    return (x3 - 2 * x2 + x) * a + (-2 * x3 + 3 * x2) + (x3 - x2) * b


def eased_time(t: float, t0: float, t1: float, ease_out: float, ease_in: float) -> float:
    """Time t (seconds) in a transition from a key at t0 to the next at t1, warped by
    `ease_curve` with the ease-out of the key it leaves and the ease-in of the key it reaches:
    the time on the keys' curve that a keyed motion (a camera's keyframes, an asset's
    animation) is at at time t. Exactly t0 and t1 at the ends."""
    x = ease_curve((t - t0) / (t1 - t0), ease_in, ease_out)
    # (1-x) t0 + x t1 lands exactly on t0 at x = 0 and on t1 at x = 1.
    return float((1.0 - x) * t0 + x * t1)


def check_ease(value: object, what: str) -> float:
    """An ease amount in [0, 1] (0: none, 1: stops at zero speed), or SplatfilmError naming `what`."""
    if isinstance(value, bool):
        value = 1.0 if value else 0.0
    if not isinstance(value, (int, float, np.number)) or not 0.0 <= float(value) <= 1.0:
        raise SplatfilmError(f"{what} must be a number in [0, 1] (0: none, 1: full stop), got {value!r}")
    return float(value)
