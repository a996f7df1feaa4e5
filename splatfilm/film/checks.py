"""Checks on a parsed film (film.script.Film): the warnings `render`, `path preview` and
`view` say as notes (`film_notes`; `report.note`: "note: " first), none of which stops a render.

`continuity_notes` tells where consecutive shots' cuts leave a gap (or an overlap) in world
time while an asset seen in both would jump at the cut; `physics_notes` repeats each
simulation's own check (a body resting in the air, still moving, or with nothing under it).
`walk_notes` tells where a walker's clips are out of step with its walk: an idle showing
while the walk carries it, a walk cycle showing while the walk stands; and where, without a
walk, a looping clip's own root motion carries the body and snaps it back every loop.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from splatfilm.film.performance import Performance
from splatfilm.film.script import Film, FilmShot
from splatfilm.film.world import TURN_STEP, PathWalk

# walk_notes: a walk slower than this (m/s) carries the body nowhere visible; a clip with
# idle feet showing while it carries the body further than GLIDE_NOTE (m) glides (its
# planted feet are dragged into steps); a walk cycle showing longer than FROZEN_NOTE (s)
# while the walk stands holds still in a stride (a few frames).
MOVING = 0.05
GLIDE_NOTE = 0.05
FROZEN_NOTE = 0.25


def continuity_notes(film: Film) -> list[str]:
    """Warnings about cuts that break continuity: consecutive shots whose cuts overlap or
    leave a gap in world time while an asset seen in both is placed or posed differently at
    the two ends of the gap (it would jump at the cut).
    A deliberate time cut is allowed; this says where one happens."""
    notes = []
    half_frame = 0.5 / float(film.fps)
    for a, b in zip(film.shots, film.shots[1:]):
        jump = b.cut_start - a.cut_end
        if abs(jump) <= half_frame:
            continue
        # A mover is what differs across the gap (placement or pose; a look at the camera aside,
        # as it follows each shot's own camera): a walk that has arrived or a body at rest does not jump.
        movers = [n for n in a.visible if n in b.visible and
                  (film.world.assets[n].motion is not None or film.world.assets[n].performance is not None) and
                  film.world.signature(a.cut_end, [n]) != film.world.signature(b.cut_start, [n])]
        if movers:
            what = (f"starts {-jump:.2f} s of world time before {a.name} ends" if jump < 0
                    else f"starts {jump:.2f} s of world time after {a.name} ends")
            notes.append(f"{film.path}: shots: {b.name} {what}, so {', '.join(movers)} "
                         f"{'jumps' if len(movers) == 1 else 'jump'} at the cut (drop its `time` to follow on)")
    return notes


def physics_notes(film: Film) -> list[str]:
    """Warnings from the check after each physics simulation: a body with nothing under it at
    the end, one resting in the air above the surface under it, or one still moving."""
    from splatfilm.film.physics import BakedMotion

    return [f"{film.path}: assets.{name}.physics: {name} {note}" for name, asset in film.world.assets.items()
            if isinstance(asset.motion, BakedMotion) for note in asset.motion.notes]



def walk_notes(film: Film) -> list[str]:
    """Warnings about a walking rigged asset whose clips are out of step with its walk, where
    its shots show it: a clip the walk does not pace (an idle) showing while the walk carries
    the body (it glides, its planted feet dragged into steps; or, its root motion kept, it
    walks on ahead of the walk and snaps back every cycle), and a walk cycle the walk
    paces showing while the walk stands (its clip time follows the ground, so it stands
    frozen in a stride). Each names the clip, its times, and when the walk sets off, arrives
    or stops, from the walk's motion: one slowing for turns arrives after length / speed. A
    clip "shows" while it has the most weight in the pose, so a crossfade half done as the
    walk arrives (or sets off) is in time. Without a walk, a looping clip whose own root
    motion carries the body (a Mixamo walk without "In Place") snaps it back each time it
    loops in shot: said too, with the way out (`root_motion: lock`, or a walk)."""
    notes = []
    for name, asset in film.world.assets.items():
        raw = film.raw.get("assets", {}).get(name) or {}
        if asset.performance is None or "clips" not in raw:
            continue
        if isinstance(asset.motion, PathWalk):
            shown = [(s.world_start, s.world_start + float(Fraction(s.shot.frame_count) / s.shot.fps))
                     for s in film.shots if name in s.visible]
            found = _pacing(asset.motion, asset.performance, shown)
        else:
            found = _snaps_back(asset.performance, [s for s in film.shots if name in s.visible])
        notes += [f"{film.path}: assets.{name}.clips[{i}]: {name}: {text}" for i, text in found]
    return notes


def _snaps_back(perf: Performance, shots: list[FilmShot]) -> list[tuple[int, str]]:
    """walk_notes for an asset without a walk: (the play, what is wrong) for each play that
    keeps its clip's root motion and loops while it shows in `shots` (at their frames' world
    times): the body it carried jumps back to where the clip starts."""
    out = []
    for i, play in enumerate(perf.plays):
        if play.root_travel <= 0 or not play.loop or play.clip.duration <= 0:
            continue
        wraps = []
        for s in shots:
            times = s.world_start + np.arange(s.shot.frame_count) / float(s.shot.fps)
            showing = [int(np.argmax(perf.play_weights(float(t)))) == i for t in times]
            clock = [perf.clip_time(play, float(t)) for t in times]
            wraps += [float(times[k]) for k in range(1, len(times))
                      if showing[k - 1] and showing[k] and clock[k] < clock[k - 1]]
        if wraps:
            times = f"{len(wraps)} time{'s' if len(wraps) > 1 else ''} in shot, first at {min(wraps):.2f} s"
            out.append((i, (f"{play.clip.name} carries it {play.root_travel:.2f} m a cycle by its own root motion and "
                            f"loops, so it snaps back {play.root_travel:.2f} m every "
                            f"{play.clip.duration / play.speed:.2f} s ({times}); give it root_motion: lock to step on "
                            "the spot, or the asset a walk: to carry it")))
    return out


def film_notes(film: Film) -> list[str]:
    """Every warning about a film, as `render`, `path preview` and `view` say it (each line a
    note: `report.note`): its cuts' continuity (continuity_notes), its simulations
    (physics_notes) and its walkers' clips (walk_notes)."""
    return continuity_notes(film) + physics_notes(film) + walk_notes(film)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs [a, b) of True in a boolean array [N]."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _pacing(walk: PathWalk, perf: Performance, shown: list[tuple[float, float]]) -> list[tuple[int, str]]:
    """walk_notes for one asset: (the index of the play to change, what is wrong) for its
    walk and performance, over the world times [start, end] (s) its shots show."""
    if not shown:
        return []
    step = TURN_STEP  # the walk's own grid: its arrival and turns are resolved no finer
    # The whole walk is sampled, so a mistimed clip is told by what it does, seen or not; what
    # it would do is measured where the shots show it.
    t0 = min(min(a for a, _ in shown), walk.start) - step
    t1 = max(max(b for _, b in shown), walk.stops) + step
    times = t0 + step * np.arange(int(np.ceil((t1 - t0) / step)) + 1)
    mid = times[:-1] + 0.5 * step
    filmed = np.zeros(len(mid), bool)
    for a, b in shown:
        filmed |= (mid >= a) & (mid <= b)
    moved = np.diff([walk.distance(float(t)) for t in times])
    standing = np.diff([walk.stepping(float(t)) for t in times]) <= 1e-9
    showing = np.array([int(np.argmax(perf.play_weights(float(t)))) for t in mid])
    full_pace = walk.start + walk.length / walk.speed
    late = f" (it slows for turns: {full_pace:.2f} s at full pace)" if walk.end > full_pace + 0.01 else ""
    arrives = f"its walk arrives at {walk.end:.2f} s{late}"
    if walk.stops > walk.end + step:
        arrives += f" and turns on the spot until {walk.stops:.2f} s"
    plays, out = perf.plays, []

    def half(play) -> str:
        return " (its crossfade half done then)" if play.crossfade > 0 else ""

    def starts(play) -> str:  # a crossfading clip shows most from halfway through its crossfade
        mid = f" (half in at {play.start + 0.5 * play.crossfade:.2f} s)" if play.crossfade > 0 else ""
        return f"{play.clip.name} starts at {play.start:.2f} s{mid}"

    for i, play in enumerate(plays):
        name = play.clip.name
        if play.stride is not None:  # paced by the walk: frozen while it stands
            for a, b in _runs((showing == i) & standing):
                held = float(filmed[a:b].sum()) * step
                if held <= FROZEN_NOTE:
                    continue
                frozen = f"it would stand frozen in a stride for {held:.2f} s in shot (a walk cycle follows the ground)"
                if times[a] >= walk.stops - 2 * step and i + 1 < len(plays):
                    nxt = plays[i + 1]
                    out.append((i + 1, f"{name} still shows until {times[b]:.2f} s but {arrives}: {frozen}; start "
                                       + f"{nxt.clip.name} at {walk.stops - 0.5 * nxt.crossfade:.2f} s{half(nxt)}"))
                elif times[a] >= walk.stops - 2 * step:
                    out.append((i, f"{name} still plays after {arrives}: {frozen}; add a clip (an idle) from "
                                   + f"{walk.stops:.2f} s"))
                else:  # a walk stands only before it sets off and once it stops
                    out.append((i, f"{starts(play)} but its walk sets off at {walk.start:.2f} s: "
                                   + f"{frozen}; start {name} at {max(walk.start - 0.5 * play.crossfade, 0.0):.2f} s"
                                   + f"{half(play)}, or the walk at {play.start + 0.5 * play.crossfade:.2f} s"))
            continue
        walking = (showing == i) & (mid > walk.start) & (mid < walk.end)
        for a, b in _runs(walking):
            glide = float(moved[a:b][filmed[a:b] & (moved[a:b] > MOVING * step)].sum())
            if glide <= GLIDE_NOTE:
                continue
            if play.root_travel > 0:  # its feet step, but its own root motion walks on besides the walk's
                out.append((i, f"{name} shows from {times[a]:.2f} s to {times[b]:.2f} s while its walk carries it, "
                               + f"and its own root motion carries it {play.root_travel:.2f} m a cycle besides "
                               + "(root_motion: keep): it would walk on ahead and snap back every cycle; drop "
                               + "root_motion: keep (along a walk a clip's root motion is locked and the walk paces "
                               + "its steps)"))
                continue
            slides = f"would glide {glide:.2f} m in shot with its feet idle"
            sets_off, arrived = times[a] <= walk.start + 2 * step, times[b] >= walk.end - 2 * step
            if arrived and not sets_off:
                out.append((i, f"{name} starts at {play.start:.2f} s but {arrives}: it {slides}; start {name} at "
                               + f"{walk.end - 0.5 * play.crossfade:.2f} s{half(play)}, or set the walk's speed"))
            elif sets_off and not arrived and i + 1 < len(plays) and plays[i + 1].stride is not None:
                nxt = plays[i + 1]
                out.append((i + 1, f"{starts(nxt)} but its walk sets off at "
                                   + f"{walk.start:.2f} s: {name} {slides}; start {nxt.clip.name} at "
                                   + f"{max(walk.start - 0.5 * nxt.crossfade, 0.0):.2f} s{half(nxt)}, or the walk at "
                                   + f"{nxt.start + 0.5 * nxt.crossfade:.2f} s"))
            else:
                out.append((i, f"{name} shows from {times[a]:.2f} s to {times[b]:.2f} s while its walk carries it "
                               + f"(it sets off at {walk.start:.2f} s and {arrives.removeprefix('its walk ')}): it "
                               + f"{slides}; play a walk cycle there (a clip the walk paces)"))
    return out
