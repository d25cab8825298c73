"""A socket server served on its own daemon thread, stopped so that its port is free again."""

from __future__ import annotations

import socketserver
import threading
from typing import TypeVar

_Server = TypeVar("_Server", bound="BackgroundServer")


class BackgroundServer:
    """Serves the socket server `_bind()` makes on a daemon thread between `start()` and `stop()`.

    Subclasses say how to bind (`_bind`), and name their thread and polling interval.
    """

    thread_name = "server"
    poll_interval = 0.1

    def __init__(self) -> None:
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> socketserver.BaseServer:
        raise NotImplementedError

    def start(self) -> None:
        """Bind (raising OSError if the port is taken) and start serving; a no-op while serving."""
        if self._server is not None:
            return
        server = self._bind()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": self.poll_interval},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving, join the thread and close the socket so the port is free again."""
        if self._server is None:
            return
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        self._server = self._thread = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); raises if not started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def running(self) -> bool:
        """Whether the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self: _Server) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
