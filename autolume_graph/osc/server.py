"""OSC over UDP into a latest-wins Mailbox, on one daemon thread.

Why not python-osc's usual path: its ThreadingOSCUDPServer starts a thread per datagram and
loses messages under load, and its Dispatcher sleeps on future-stamped bundles (strict timing),
logs a root-logger warning for every unknown type tag (a log flood from garbage) and swallows
parse errors silently (nothing to count). So the socket loop is python-osc's
BlockingOSCUDPServer (one thread, datagrams handled in order), and packet dispatch is replaced
by a decoder that walks bundles itself (timetags ignored: everything is applied on the next
frame), checks type tags before python-osc parses the message, and posts every message to the
mailbox. Bad datagrams are counted and logged rate-limited; none can stop the thread.

By default the server listens on 127.0.0.1 only. To take a controller on another machine
(TouchOSC on a tablet, TouchDesigner on a second computer) pass host="0.0.0.0" (all IPv4
interfaces) or "::" for IPv6, and point the controller at this machine's LAN address; `allow`
("192.168.1.0/24,10.0.0.7") then admits only those senders, the others are dropped unread and
counted as "refused-sender".
"""

from __future__ import annotations

import socket
import sys
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message import ParseError as MessageParseError
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.parsing import osc_types

from autolume_graph.osc.allow import AllowList, parse_allow
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.serving import BackgroundServer

DEFAULT_PORT = 1338
MAX_BUNDLE_DEPTH = 8
BATCH_SECONDS = 0.008
_BUNDLE = b"#bundle\x00"
_KNOWN_TAGS = frozenset("ihfdsbrmtTFN[]")
# Tags python-osc does not parse but which share the layout of one it does:
# Impulse -> Nil (no data), Symbol -> string, char -> int32.
_TAG_ALIASES = str.maketrans("ISc", "Nsi")


class DecodeError(Exception):
    """A datagram that is not valid OSC; `kind` is the counter it goes to."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def decode_packet(dgram: bytes) -> list[tuple[str, tuple]]:
    """All (address, args) in a message or (nested) bundle, in order; raises DecodeError."""
    out: list[tuple[str, tuple]] = []
    _decode(dgram, 0, out)
    return out


def _decode(dgram: bytes, depth: int, out: list[tuple[str, tuple]]) -> None:
    if dgram.startswith(b"/"):
        out.append(_decode_message(dgram))
        return
    if not dgram.startswith(_BUNDLE):
        raise DecodeError("malformed", f"neither a message nor a bundle ({len(dgram)} bytes)")
    if depth >= MAX_BUNDLE_DEPTH:
        raise DecodeError("malformed", f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if len(dgram) < 16:
        raise DecodeError("malformed", "bundle shorter than its header")
    index, end = 16, len(dgram)  # prefix + 8-byte timetag, which we do not wait for
    while index < end:
        if index + 4 > end:
            raise DecodeError("malformed", "truncated bundle element size")
        size = int.from_bytes(dgram[index : index + 4], "big", signed=True)
        index += 4
        if size <= 0 or size % 4 or index + size > end:
            raise DecodeError("malformed", f"bundle element size {size} does not fit")
        _decode(dgram[index : index + size], depth + 1, out)
        index += size


def _decode_message(dgram: bytes) -> tuple[str, tuple]:
    try:
        address, index = osc_types.get_string(dgram, 0)
        if index < len(dgram):
            tags, tags_end = osc_types.get_string(dgram, index)
            if not tags.startswith(","):
                raise DecodeError("malformed", f"{address}: type tags do not start with ','")
            if not _KNOWN_TAGS.issuperset(tags[1:]):
                aliased = tags.translate(_TAG_ALIASES)
                if not _KNOWN_TAGS.issuperset(aliased[1:]):
                    raise DecodeError("bad-typetag", f"{address}: unsupported type tags {tags!r}")
                dgram = dgram[:index] + aliased.encode("ascii") + dgram[index + len(tags) :]
        message = OscMessage(dgram)
    except (osc_types.ParseError, MessageParseError, UnicodeDecodeError) as exc:
        raise DecodeError("malformed", f"unparsable message: {exc}") from None
    return message.address, tuple(message.params)


class _MailboxDispatcher(Dispatcher):
    """Posts every message of a packet to the mailbox, never sleeps, never replies."""

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(strict_timing=False)
        self._mailbox = mailbox

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        t_received = time.monotonic()
        try:
            messages = decode_packet(data)
        except DecodeError as exc:
            self._mailbox.warn(exc.kind, f"{exc.detail} from {client_address[0]}")
            return []
        for address, args in messages:
            self._mailbox.post(address, args, t_received)
        return []


class _UDPServer(BlockingOSCUDPServer):
    max_packet_size = 65535  # socketserver's default 8192 would truncate large bundles

    def __init__(self, address: tuple[str, int], mailbox: Mailbox, allow: AllowList | None) -> None:
        self._mailbox = mailbox
        self._allow = allow
        super().__init__(address, _MailboxDispatcher(mailbox))

    def verify_request(self, request: tuple, client_address: tuple) -> bool:
        """Senders outside the allow-list are dropped and counted; the decoder judges the rest (and counts)."""
        if self._allow is None or self._allow.admits(client_address[0]):
            return True
        self._mailbox.warn("refused-sender", f"{client_address[0]} is outside {self._allow.text}")
        return False

    def handle_error(self, request: tuple, client_address: tuple) -> None:
        exc = sys.exc_info()[1]
        self._mailbox.warn("error", f"{type(exc).__name__}: {exc}")

    def service_actions(self) -> None:
        """After each wake-up, take every datagram already queued, then pause `BATCH_SECONDS`.

        Under a flood this thread then wakes a few hundred times a second rather than once per
        datagram; each wake-up preempts one of torch's render threads and the whole frame waits for
        it. Messages are applied at the next frame anyway, so the pause adds no visible latency.
        """
        while True:
            try:
                data, client_address = self.socket.recvfrom(self.max_packet_size, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._mailbox.warn("error", f"{type(exc).__name__}: {exc}")
                break
            try:  # as socketserver handles the datagram that woke the thread
                if self.verify_request((data, self.socket), client_address):
                    self.process_request((data, self.socket), client_address)
            except Exception:
                self.handle_error((data, self.socket), client_address)
        time.sleep(BATCH_SECONDS)


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
