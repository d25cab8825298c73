"""OSC over UDP into a latest-wins Mailbox, on one daemon thread.

Why not python-osc's usual path: its ThreadingOSCUDPServer starts a thread per datagram and
loses messages under load, and its Dispatcher sleeps on future-stamped bundles (strict timing),
logs a root-logger warning for every unknown type tag (a log flood from garbage) and swallows
parse errors silently (nothing to count). So the socket loop is python-osc's
BlockingOSCUDPServer (one thread, datagrams handled in order), and each wake-up takes the queued
datagrams as one batch through our decoder (`osc.decode`: bundles walked, timetags ignored, every
message posted to the mailbox). Bad datagrams are counted and logged rate-limited; none can stop
the thread.

By default the server listens on 127.0.0.1 only. To take a controller on another machine
(TouchOSC on a tablet, TouchDesigner on a second computer) pass host="0.0.0.0" (all IPv4
interfaces) or "::" for IPv6, and point the controller at this machine's LAN address; `allow`
("192.168.1.0/24,10.0.0.7") then admits only those senders, the others are dropped undecoded
and counted as "refused-sender".
"""

from __future__ import annotations

import socket
import sys
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from autolume_graph.osc.allow import AllowList, parse_allow
from autolume_graph.osc.decode import DecodeError, decode_packet
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.serving import BackgroundServer

DEFAULT_PORT = 1338
BATCH_SECONDS = 0.008
MAX_BATCH = 1024  # datagrams per wake-up: a flood beyond ~100,000/s is dropped by the kernel, not queued here


class _UDPServer(BlockingOSCUDPServer):
    """socketserver's loop (select with a poll interval, clean shutdown) with our own datagram handling.

    Datagrams are taken in batches: decoded one by one, then posted under one mailbox lock and
    counted once per problem kind, so a flood costs the thread little more than its decoding.
    """

    max_packet_size = 65535  # socketserver's default 8192 would truncate large bundles

    def __init__(self, address: tuple[str, int], mailbox: Mailbox, allow: AllowList | None) -> None:
        self._mailbox = mailbox
        self._allow = allow
        super().__init__(address, Dispatcher())

    def verify_request(self, request: tuple, client_address: tuple) -> bool:
        """Every datagram goes to `_handle` (python-osc's check would drop garbage uncounted)."""
        return True

    def process_request(self, request: tuple, client_address: tuple) -> None:
        """The datagram that woke the thread; the rest of the queue follows in `service_actions`."""
        self._handle([(request[0], client_address)])

    def handle_error(self, request: tuple, client_address: tuple) -> None:
        exc = sys.exc_info()[1]
        self._mailbox.warn("error", f"{type(exc).__name__}: {exc}")

    def service_actions(self) -> None:
        """After each wake-up, take what is already queued (at most MAX_BATCH), then pause `BATCH_SECONDS`.

        Under a flood this thread then wakes a few hundred times a second rather than once per
        datagram; each wake-up preempts one of torch's render threads and the whole frame waits for
        it. Messages are applied at the next frame anyway, so the pause adds no visible latency.
        """
        batch: list[tuple[bytes, tuple]] = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.socket.recvfrom(self.max_packet_size, socket.MSG_DONTWAIT))
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._mailbox.warn("error", f"{type(exc).__name__}: {exc}")
                break
        if batch:
            try:
                self._handle(batch)
            except Exception:  # a bug of ours must not end the thread: count it, take the next batch
                self.handle_error(None, None)
        time.sleep(BATCH_SECONDS)

    def _handle(self, batch: list[tuple[bytes, tuple]]) -> None:
        """Decode each datagram of an admitted sender, post all messages, count the problems by kind."""
        t_received = time.monotonic()
        messages: list[tuple[str, tuple]] = []
        problems: dict[str, tuple[int, str]] = {}  # kind -> (how many, the latest's detail)

        def note(kind: str, detail: str) -> None:
            problems[kind] = (problems.get(kind, (0, ""))[0] + 1, detail)
        for data, sender in batch:
            if self._allow is not None and not self._allow.admits(sender[0]):
                note("refused-sender", f"{sender[0]} is outside {self._allow.text}")
                continue
            try:
                messages += decode_packet(data)
            except DecodeError as exc:
                note(exc.kind, f"{exc.detail} from {sender[0]}")
        if messages:
            self._mailbox.post_many(messages, t_received)
        for kind, (n, detail) in problems.items():
            self._mailbox.warn(kind, detail, n)


class OSCServer(BackgroundServer):
    """Receives OSC on `host:port` into `mailbox` on its own daemon thread.

    Port 0 picks a free port; read the actual one from `address` after `start()`. `allow`: the
    senders admitted, as "CIDR[,CIDR]" (None or empty: all); a bad one raises ValueError here.
    """

    thread_name = "osc-server"
    poll_interval = 0.05

    def __init__(
        self,
        mailbox: Mailbox | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        recv_buffer_bytes: int = 4 << 20,
        allow: str | None = None,
    ) -> None:
        super().__init__()
        self.allow = parse_allow(allow)
        self.mailbox = mailbox if mailbox is not None else Mailbox()
        self._host = host
        self._port = port
        self._recv_buffer = recv_buffer_bytes

    def _bind(self) -> _UDPServer:
        server = _UDPServer((self._host, self._port), self.mailbox, self.allow)
        try:  # a bigger kernel buffer absorbs bursts while the thread is descheduled
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_buffer)
        except OSError:
            pass
        return server

    @property
    def refused(self) -> int:
        """Datagrams dropped because their sender is outside the allow-list."""
        return self.mailbox.counts().get("refused-sender", 0)
