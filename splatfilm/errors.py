"""The one error type users see: a one-line message naming the file and what is wrong."""


class SplatfilmError(ValueError):
    """Bad input or a failed job. The CLI prints `error: <message>` and exits with status 2."""


def last_line(error: BaseException) -> str:
    """The last non-empty line of `error`'s message, at most 200 characters (ffmpeg's and
    COLMAP's errors end with their cause), or the error's type when it says nothing."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(error).__name__


def first_line(error: BaseException) -> str:
    """`error`'s type and the first line of its message ('UnpicklingError: invalid load key'),
    or the type alone when it says nothing: a library's error inside a one-line message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
