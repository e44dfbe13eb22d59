"""Serving a studio: uvicorn in a thread of its own, on a socket bound before it starts."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from ..errors import NCAError
from .security import DEFAULT_HOST, WILDCARDS, allowed_hosts, new_token
from .server import create_app
from .session import Session

START_TIMEOUT = 20.0  # seconds


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); NCAError if it cannot be had."""
    if not 0 <= port <= 65535:
        raise NCAError(f"port must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except (OSError, OverflowError) as exc:
        sock.close()
        detail = getattr(exc, "strerror", None) or str(exc)
        raise NCAError(f"cannot serve on {host}:{port}: {detail}") from None
    return sock


class StudioServer:
    """The page and its WebSocket for one Session, at `url` (which carries the token)."""

    def __init__(self, session: Session, host: str = DEFAULT_HOST, port: int = 0, token: str | None = None):
        self.session, self.host = session, host
        self.token = token or new_token()
        self.socket = bind(host, port)
        self.port = self.socket.getsockname()[1]
        self.app = create_app(session, self.token, allowed_hosts(host, self.port))
        config = uvicorn.Config(self.app, ws="websockets-sansio", lifespan="off", log_config=None, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=2, ws_max_size=1 << 20)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in WILDCARDS else (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{shown}:{self.port}/?token={self.token}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                        name="nca-studio-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise NCAError(f"the studio's server did not start on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()
