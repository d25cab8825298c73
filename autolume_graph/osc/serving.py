"""A socket server served on its own daemon thread, stopped so that its port is free again."""

from __future__ import annotations

import socketserver
import threading


class ServingThread:
    """Serves `server` on a daemon thread from construction until `stop()`."""

    def __init__(self, server: socketserver.BaseServer, name: str, poll_interval: float) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval},
                                       name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving, join the thread, close the socket."""
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()
