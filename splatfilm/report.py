"""What splatfilm tells the user while it works: the one home of notes (`note`), status lines
(`status`) and progress bars (`progress_bar`; not `progress`, the name of the bool most
functions take to ask for one) for every module outside `cli/`, which prints its results
itself.

All three go to stderr. stdout is left to results a script may read (`wrote X`, metrics), as
git, ffmpeg and COLMAP keep their chatter on stderr; and a status line on the stream the bars
are drawn on keeps its place among them, which two streams (buffered apart when piped) do not.
Lines are written through `tqdm.write`, which lifts a bar being drawn and draws it again below
the line instead of tearing it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

NOTE_PREFIX = "note: "


def note(text: str) -> None:
    """Say `text` on stderr as a note: one line, "note: " first (a text already starting with
    it, as the notes built to be returned do, is not given a second). Every note and warning
    of the library takes this form; none stops the job."""
    _write(text if text.startswith(NOTE_PREFIX) else NOTE_PREFIX + text)


def status(text: str) -> None:
    """Say on stderr what the job is doing or has done ("triangulating through 24 pinhole
    views ..."), one line as it is."""
    _write(text)


def bars_shown(show: bool = True, stream: TextIO | None = None) -> bool:
    """Whether a progress bar asked for with `show` is drawn as a bar on `stream` (default
    sys.stderr): only on a terminal. Elsewhere (a log file, a pipe, a render farm's job log)
    `progress_bar` writes a plain line every LOG_INTERVAL seconds instead, since a bar's
    carriage returns are noise there but a farm still wants to see a job advance."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return show and isatty is not None and isatty()


# Seconds between progress lines in a log: often enough to show a job is alive, seldom enough
# that an hour's fit logs a few hundred lines.
LOG_INTERVAL = 30.0


class _LogLines:
    """A stream for tqdm that turns each redraw (a carriage return, then the bar) into one
    line of a log."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        for line in text.replace("\r", "\n").split("\n"):
            if line.strip():
                self.stream.write(line.rstrip() + "\n")

    def flush(self) -> None:
        self.stream.flush()


@functools.cache
def _log_bar() -> type[tqdm]:
    """tqdm for a log: a postfix set (fit's loss every 10 steps) waits for the next interval's
    line. tqdm redraws on every set_postfix, which in a log is a line each time, and one that
    shows an iterated bar's count as of its last interval line, not where the job is."""
    from tqdm import tqdm

    class LogBar(tqdm):
        def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            super().set_postfix_str(s, refresh=False)

    return LogBar


def progress_bar(iterable: Iterable | None = None, *, desc: str, unit: str, total: float | None = None,
                 initial: float = 0, show: bool = True, stream: TextIO | None = None,
                 postfix: str | None = None) -> tqdm:
    """A progress bar over `iterable` (or updated by hand up to `total`), `unit`s counted from
    `initial`, labelled `desc`, on `stream` (default sys.stderr): a bar on a terminal, a line
    every LOG_INTERVAL seconds (and at the end) elsewhere (`bars_shown`), nothing when `show`
    is false (it still iterates, and its updates do nothing). `postfix`: a text shown after
    the counts until replaced."""
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if not show:
        return tqdm(iterable, total=total, initial=initial, disable=True)
    if not bars_shown(show, stream):
        return _log_bar()(iterable, desc=desc, unit=unit, total=total, initial=initial, file=_LogLines(stream),
                          mininterval=LOG_INTERVAL, maxinterval=LOG_INTERVAL, ascii=True, postfix=postfix)
    # dynamic_ncols: tqdm sizes a bar to the terminal only on sys.stdout and sys.stderr otherwise
    # (a stream on a duplicate of fd 2, as `io.colmap_library.colmap_output` gives, is neither).
    return tqdm(iterable, desc=desc, unit=unit, total=total, initial=initial, file=stream,
                dynamic_ncols=True, postfix=postfix)


def _write(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
