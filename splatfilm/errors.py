"""The one error type users see: a one-line message naming the file and what is wrong."""


class SplatfilmError(ValueError):
    """Bad input or a failed job. The CLI prints `error: <message>` and exits with status 2."""
