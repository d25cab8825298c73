"""MIDI input ports through python-rtmidi: one shared input per port name for the whole process.

Readers `acquire(name)` a Feed (its EventLog, its status line; reading takes what the port queued). One
watcher thread opens the ports wanted, notices a port that vanished (rtmidi keeps a dead JACK connection
"open"), and opens it again when it comes back. The API is chosen at run time: ALSA where the sequencer
exists, else JACK (this needs a running server), else what the platform has (CoreMIDI, Windows MM).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from autolume_graph import device_lists
from autolume_graph.midi.events import MidiEvent, parse
from autolume_graph.midi.mailbox import EventLog

log = logging.getLogger(__name__)

POLL_S = 0.5  # how soon a port that vanished or appeared is noticed (and a port nobody reads is emptied)
QUEUE = 8192  # messages rtmidi keeps between two pumps
PUMP_MAX = 4096  # taken at most per pump: a flood costs a frame a few milliseconds, the rest waits
RETRY_S = 3.0  # between attempts to reach a MIDI system that is not there, doubling up to RETRY_MAX_S
RETRY_MAX_S = 60.0  # (libjack writes lines to stderr at each attempt without a server)
CLIENT_NAME = "autolume"
ALSA_SEQUENCER = "/dev/snd/seq"


class MidiUnavailable(RuntimeError):
    """No MIDI here (python-rtmidi missing, no ALSA sequencer and no JACK server); one line."""


def _rtmidi() -> Any:
    try:
        import rtmidi
    except ImportError as exc:
        raise MidiUnavailable(f"python-rtmidi is not installed ({exc})") from None
    return rtmidi


def choose_api() -> tuple[int, str]:
    """(rtmidi API, its name): ALSA where the sequencer device exists, else JACK, else the platform's own."""
    rtmidi = _rtmidi()
    compiled = rtmidi.get_compiled_api()
    if rtmidi.API_LINUX_ALSA in compiled and os.path.exists(ALSA_SEQUENCER):
        api = rtmidi.API_LINUX_ALSA
    elif rtmidi.API_UNIX_JACK in compiled:
        api = rtmidi.API_UNIX_JACK
    elif compiled:
        api = compiled[0]
    else:
        raise MidiUnavailable("python-rtmidi has no MIDI API compiled in")
    return api, rtmidi.get_api_name(api)


def _client() -> tuple[Any, str]:
    """A new rtmidi input client and its API's name; MidiUnavailable with the reason when none can be made."""
    api, name = choose_api()
    try:
        return _rtmidi().MidiIn(api, CLIENT_NAME, QUEUE), name
    except Exception as exc:  # noqa: BLE001 - rtmidi raises its own SystemError subclass
        hint = " (no ALSA sequencer here)" if name == "jack" else ""
        raise MidiUnavailable(f"no MIDI ({name}): {' '.join(str(exc).split())}{hint}") from None


def list_ports() -> list[str]:
    """The MIDI input ports found now (the editor's chooser, off the UI thread)."""
    client, _ = _client()
    try:
        return list(client.get_ports())
    finally:
        client.delete()


def resolve(wanted: str, names: list[str]) -> int | None:
    """The index of the port called `wanted` among `names`: the same name, else the first that contains it
    (ALSA adds client numbers); "" is the first port."""
    if not names:
        return None
    if not wanted:
        return 0
    if wanted in names:
        return names.index(wanted)
    return next((i for i, name in enumerate(names) if wanted in name), None)


@dataclass
class Feed:
    """One wanted port: its events and a status line. `open_name` is the port it is reading ("" while none).

    rtmidi queues what arrives; `pump` moves it into the log. No Python runs on MIDI's own thread: with a
    callback, python-rtmidi on JACK hands over the first message again for each one that came in the same
    period whenever the callback had to wait for the GIL (a busy render thread), so callbacks are not used."""

    name: str
    log: EventLog = field(default_factory=EventLog)
    status: str = "opening"
    open_name: str = ""
    users: int = 0
    _client: Any = None
    _last_t: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_open(self) -> bool:
        return bool(self.open_name)

    def pump(self) -> None:
        """Move up to PUMP_MAX queued messages into the log (readers before they read, and the watcher)."""
        with self._lock:
            client = self._client
            if client is None:
                return
            now = time.perf_counter()
            for _ in range(PUMP_MAX):
                got = client.get_message()
                if not got:
                    return
                data, delta = got
                # rtmidi gives each message's time since the one before (the driver's clock): exact spacing,
                # anchored to now at the first and never later than now
                t = now if self._last_t is None else min(self._last_t + delta, now)
                self._last_t = t
                event = parse(data, t)
                if event is not None:
                    self.log.post(event)

    def attach(self, client: Any, port: str) -> None:
        with self._lock:
            self._client, self.open_name, self._last_t = client, port, None

    def detach(self) -> Any:
        """Stop reading; the client, for the caller to close outside the lock."""
        with self._lock:
            client, self._client, self.open_name = self._client, None, ""
        return client

    def unplugged(self) -> None:
        """The port is gone: close it but keep the client, to open the port again when it returns (making a
        client holds every Python thread for ~30 ms: python-rtmidi keeps the GIL in its calls)."""
        with self._lock:
            if self._client is not None:
                self._client.close_port()
            self.open_name = ""


class PortManager:
    """The process's MIDI inputs. `acquire`/`release` from any thread; the watcher does all rtmidi work."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._feeds: dict[str, Feed] = {}
        self._closing: list[Feed] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe: Any = None
        self._listers = 0  # who needs `listed` kept fresh without a port of their own (learn, the monitor)
        self._next_try = 0.0
        self._retry_s = RETRY_S
        self.listed: tuple[str, ...] = ()  # the ports found at the latest look (while something is wanted)
        self.api = ""

    def acquire(self, name: str) -> Feed:
        """The shared feed of port `name` ("" = the first port), opened soon by the watcher."""
        with self._lock:
            feed = self._feeds.get(name)
            if feed is None:
                feed = self._feeds[name] = Feed(name)
                self._next_try = 0.0
            feed.users += 1
            self._ensure_watcher()
        self._wake.set()
        return feed

    def release(self, feed: Feed) -> None:
        """One reader less; the last one's going closes the port (on the watcher thread)."""
        with self._lock:
            feed.users -= 1
            if feed.users <= 0 and self._feeds.get(feed.name) is feed:
                del self._feeds[feed.name]
                self._closing.append(feed)
        self._wake.set()

    def keep_listing(self, on: bool) -> None:
        """Keep `listed` fresh (on) or stop needing it (off); calls pair up."""
        with self._lock:
            self._listers += 1 if on else -1
            if on:
                self._ensure_watcher()
        self._wake.set()

    def _ensure_watcher(self) -> None:
        """Start the watcher unless it runs (the lock held)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="midi-ports", daemon=True)
            self._thread.start()

    def feeds(self) -> list[Feed]:
        with self._lock:
            return list(self._feeds.values())

    # --- the watcher thread ------------------------------------------------------------
    def _watch(self) -> None:
        while True:
            with self._lock:
                closing, self._closing = self._closing, []
                wanted = list(self._feeds.values())
            for feed in closing:
                self._close(feed)
            if not wanted and not closing:
                with self._lock:
                    if not self._feeds and not self._listers:  # nothing wanted: stop (until the next acquire)
                        self._drop_probe()
                        self._thread = None
                        return
            try:
                self._look(wanted)
            except Exception as exc:  # noqa: BLE001 - the watcher outlives whatever a driver does
                log.warning("midi: %s", exc)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _look(self, wanted: list[Feed]) -> None:
        """List the ports; close feeds whose port vanished, open those whose port is there."""
        if self._probe is None:
            if time.monotonic() < self._next_try:
                return
            try:
                self._probe, self.api = _client()
                self._retry_s = RETRY_S
            except MidiUnavailable as exc:
                self._next_try = time.monotonic() + self._retry_s
                self._retry_s = min(2 * self._retry_s, RETRY_MAX_S)
                self._lost(wanted, str(exc))
                return
        try:
            names = list(self._probe.get_ports())
        except Exception as exc:  # noqa: BLE001 - a server that went away: start over
            self._drop_probe()
            self._lost(wanted, f"no MIDI ({self.api}): {' '.join(str(exc).split())}")
            return
        self.listed = tuple(names)
        for feed in wanted:
            feed.pump()
            if feed.is_open and feed.open_name not in names:  # unplugged: wait for it under the name asked for
                feed.unplugged()
            if not feed.is_open:
                self._open(feed, names)

    def _lost(self, wanted: list[Feed], problem: str) -> None:
        """No MIDI system: every port closed, each saying why, until it answers again."""
        self.listed = ()
        for feed in wanted:
            self._close(feed)
            feed.status = problem

    def _open(self, feed: Feed, names: list[str]) -> None:
        index = resolve(feed.name, names)
        if index is None:
            feed.status = (f"{self.api}: waiting for port {feed.name!r}" if feed.name
                           else f"{self.api}: waiting for a MIDI port")
            return
        port = names[index]
        try:
            client = feed._client or _client()[0]
            feed._client = client  # kept, opened or not, until the feed closes
            own = list(client.get_ports())  # its own list: the probe's order may differ
            client.ignore_types(sysex=True, timing=False, active_sense=True)
            client.open_port(own.index(port), "in")
        except Exception as exc:  # noqa: BLE001 - a port that went in between, a refused open: try again
            feed.status = f"{self.api}: cannot open {port!r}: {' '.join(str(exc).split())}"
            return
        feed.attach(client, port)
        feed.status = f"{self.api}: {port}"

    def _close(self, feed: Feed) -> None:
        client = feed.detach()
        if client is not None:
            try:
                client.close_port()
                client.delete()
            except Exception as exc:  # noqa: BLE001
                log.warning("midi: closing %s: %s", feed.name, exc)

    def _drop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.delete()


PORTS = PortManager()
"""The one manager of the process: every node and binding shares its ports."""

device_lists.register("midi in", list_ports)


class PortReader:
    """One reader's side of a shared port: what arrived since it last read. `close()` once done."""

    def __init__(self, name: str, manager: PortManager = PORTS) -> None:
        self.name = name
        self._manager = manager
        self.feed: Feed | None = manager.acquire(name)
        self._cursor = self.feed.log.cursor()

    def read(self) -> tuple[list[MidiEvent], int]:
        """(the events since the last read, oldest first; how many a flood pushed out before this read)."""
        if self.feed is None:
            return [], 0
        self.feed.pump()
        events, self._cursor, missed = self.feed.log.read(self._cursor)
        return events, missed

    @property
    def status(self) -> str:
        return self.feed.status if self.feed is not None else "closed"

    @property
    def port(self) -> str:
        """The port being read ("" while none is open)."""
        return self.feed.open_name if self.feed is not None else ""

    def close(self) -> None:
        feed, self.feed = self.feed, None
        if feed is not None:
            self._manager.release(feed)


def reader_for(current: PortReader | None, name: str) -> PortReader:
    """`current` while it reads port `name`; else it is closed and a reader of `name` is returned (a node
    whose port parameter changed)."""
    if current is not None and current.name == name:
        return current
    if current is not None:
        current.close()
    return PortReader(name)
