"""The viewer's port: refuse a busy one with a one-line error that names a free one.

viser itself would quietly move to the next free port, leaving a printed URL nobody asked for;
`splatfilm view --port N` either gets N or says why not.
"""

from __future__ import annotations

import socket

from splatfilm.errors import SplatfilmError


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As the server binds (asyncio sets SO_REUSEADDR on POSIX): a port only in TIME_WAIT is free.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on now (the OS's pick)."""
    with _bind(host, 0) as sock:
        return int(sock.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Raise SplatfilmError unless the viewer can listen on host:port: a busy port names a free
    one to use instead; an address this machine does not have says so."""
    if not 0 < port < 65536:
        raise SplatfilmError(f"--port {port}: expected a port number from 1 to 65535")
    try:
        _bind(host, port).close()
    except socket.gaierror as e:
        raise SplatfilmError(f"--host {host}: not an address of this machine ({e.strerror or e})") from None
    except OSError as e:
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise SplatfilmError(f"port {port} on {host} is busy (another program listens there); "
                                 f"try --port {free_port(host)}") from None
        if e.errno in (13, 10013):  # EACCES: a privileged port
            raise SplatfilmError(f"port {port} on {host}: not allowed ({e.strerror}); try --port {free_port(host)}"
                                 ) from None
        raise SplatfilmError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None
