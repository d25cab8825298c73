"""OSC out (OSCOut node, Perfect Loop pulse) that never raises into the render thread.

A receiver that is down, a host that does not resolve, or an unsendable value must cost a
counter, not a frame: `send` returns False and counts instead of raising.
"""

from __future__ import annotations

import logging
import threading

from pythonosc.osc_message_builder import BuildError
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.osc.mailbox import RateLimitedLog

log = logging.getLogger(__name__)


class OSCSender:
    """Sends OSC messages over UDP to one `host:port`; the socket is opened on first use."""

    def __init__(self, host: str, port: int, log_interval_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.sent = 0
        self.failed = 0
        self._client: SimpleUDPClient | None = None
        self._lock = threading.Lock()
        self._log = RateLimitedLog(log, log_interval_s)

    def send(self, address: str, *args: object) -> bool:
        """Send `address` with `args` (int, float, str, bool, bytes, None); False on any failure."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = SimpleUDPClient(self.host, self.port)
                self._client.send_message(address, list(args))
            except (OSError, BuildError, ValueError, TypeError, OverflowError) as exc:
                self.failed += 1
                self._log(f"send to {self.host}:{self.port} failed", f"{type(exc).__name__}: {exc}")
                return False
            self.sent += 1
            return True

    def close(self) -> None:
        """Close the socket; a later `send` opens a new one."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
