"""NDI video output: the render thread hands over frames, a sender thread pushes them to NDI.

Why a thread and a latest-wins slot: NDI's synchronous send compresses the frame and can wait on
the network; a slow or vanished receiver must never stall the frame loop. ``send`` copies the
frame into a reused buffer of a latest-wins `FrameWorker` and returns; a frame still waiting when
the next arrives is replaced and counted in ``dropped``.

The NDI runtime (``NDIlib`` from the ``ndi-python`` package, which bundles ``libndi``) is loaded
on first use; if it cannot be imported or initialised, ``NDISender`` raises one ``OutputError``
line and the rest of the program runs on. Licence notice: see NOTICE-NDI.md at the repo root.

Reaching a sender without mDNS (what works here, checked with NDI SDK 6.3.2 on Linux):
NDI discovery normally uses mDNS (avahi), which these machines do not run. Two mDNS-free ways
both work, in the same process or across processes:

* a finder with extra IPs: ``NDIlib.find_create_v2(NDIlib.FindCreate(p_extra_ips="127.0.0.1"))``
  lists local senders at once as ``("<HOST> (<name>)", "127.0.0.1:<port>")``; equivalently put
  ``{"ndi": {"networks": {"ips": "127.0.0.1"}}}`` in ``$NDI_CONFIG_DIR/ndi-config.v1.json`` so
  every NDI application (TouchDesigner, OBS, ...) on the host queries 127.0.0.1 directly;
* a direct connection: ``NDIlib.Source(p_url_address="127.0.0.1:<port>")`` passed to
  ``recv_connect`` (no name needed). Port 5960 is the process's NDI messaging server, not a
  video source; each sender listens on the next free TCP port from 5961 up (see ``ss -ltnp``).

Shutdown: a sender still alive when the interpreter exits makes libndi's static destructors find
its threads running, and the process aborts (``terminate called without an active exception``,
exit status 134) instead of ending with its own status. ``shutdown`` closes every live sender and
then tears the runtime down; it runs at exit (registered when the runtime is first loaded) and the
command line calls it itself, in order, after the graph has stopped.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from fractions import Fraction
from types import ModuleType

import numpy as np

from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.frame_worker import FrameWorker

_runtime_lock = threading.Lock()
_runtime: ModuleType | None = None
_live: weakref.WeakSet[NDISender] = weakref.WeakSet()  # senders not yet closed, for `shutdown`


def load_runtime() -> ModuleType:
    """Import and initialise NDIlib once per process (torn down only by `shutdown`: other senders may live)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            try:
                import NDIlib
            except (ImportError, OSError) as exc:
                raise OutputError(f"NDI runtime could not be loaded ({one_line(exc)})") from exc
            if not NDIlib.initialize():
                reason = "CPU not supported by NDI" if not NDIlib.is_supported_CPU() else "unknown reason"
                raise OutputError(f"NDI runtime could not be initialised ({reason})")
            _runtime = NDIlib
            atexit.unregister(shutdown)  # once, however often the runtime was loaded again after a shutdown
            atexit.register(shutdown)
        return _runtime


def shutdown() -> None:
    """Close every live sender (joining its thread), then destroy the NDI runtime. Idempotent; a later
    sender loads the runtime again."""
    global _runtime
    for sender in list(_live):
        sender.close()
    with _runtime_lock:
        if _runtime is not None:
            _runtime.destroy()
            _runtime = None


class NDISender:
    """An NDI source named `name` sending BGRX (or BGRA) frames tagged with frame rate `fps`."""

    def __init__(self, name: str = "autolume-graph", fps: float = 30, alpha: bool = False) -> None:
        self._ndi = load_runtime()
        rate = Fraction(fps).limit_denominator(1001)
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._rate = rate
        self._fourcc = self._ndi.FOURCC_VIDEO_TYPE_BGRA if alpha else self._ndi.FOURCC_VIDEO_TYPE_BGRX
        self._name = name
        self._instance = self._create(name)
        self._instance_lock = threading.Lock()  # held while sending, renaming, closing
        self._close_lock = threading.Lock()
        self._worker = FrameWorker(f"ndi-send:{name}")
        self._shut = False  # close() has run
        self.sent = 0
        self.error: OutputError | None = None
        self._worker.start(self._run)
        _live.add(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        """Whether `close` has run (the source is withdrawn, its thread gone)."""
        return self._shut

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before they were sent."""
        return self._worker.dropped

    @property
    def frame_rate(self) -> tuple[int, int]:
        """(frame_rate_N, frame_rate_D) as sent in every frame's metadata."""
        return self._rate.numerator, self._rate.denominator

    def source_name(self) -> str:
        """The full NDI source name receivers see, e.g. ``HOST (autolume-graph)``."""
        with self._instance_lock:
            return self._ndi.send_get_source_name(self._instance).ndi_name

    def connections(self, timeout_ms: int = 0) -> int:
        """How many receivers are connected (waits up to `timeout_ms` for at least one)."""
        with self._instance_lock:
            return self._ndi.send_get_no_connections(self._instance, timeout_ms)

    def send(self, frame_bgra: np.ndarray) -> None:
        """Queue an HxWx4 uint8 frame (copied; any strides). Never blocks on the network."""
        if frame_bgra.ndim != 3 or frame_bgra.shape[2] != 4 or frame_bgra.dtype != np.uint8:
            raise ValueError(f"expected HxWx4 uint8, got {frame_bgra.shape} {frame_bgra.dtype}")
        self._worker.offer(frame_bgra.shape, lambda buf: np.copyto(buf, frame_bgra))

    def rename(self, name: str) -> None:
        """Re-announce under a new name; the old source disappears. Raises OutputError on failure."""
        if name == self._name:
            return
        instance = self._create(name)
        with self._instance_lock:
            old, self._instance, self._name = self._instance, instance, name
            self._ndi.send_destroy(old)

    def close(self) -> None:
        """Stop the sender thread and withdraw the source. Idempotent."""
        with self._close_lock:
            if self._shut:
                return
            self._shut = True
        self._worker.close(drain=False)
        with self._instance_lock:
            self._ndi.send_destroy(self._instance)
        _live.discard(self)

    def __enter__(self) -> NDISender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self, name: str) -> object:
        settings = self._ndi.SendCreate()
        settings.ndi_name = name
        settings.clock_video = False  # the render loop sets the pace, not NDI
        instance = self._ndi.send_create(settings)
        if instance is None:
            raise OutputError(f"NDI sender {name!r} could not be created")
        return instance

    def _run(self) -> None:
        frame = self._ndi.VideoFrameV2(
            FourCC=self._fourcc, frame_rate_N=self._rate.numerator, frame_rate_D=self._rate.denominator,
            timecode=self._ndi.SEND_TIMECODE_SYNTHESIZE,
        )
        while (item := self._worker.next_frame()) is not None:
            buf = item[0]
            frame.data = buf  # sets xres, yres and the line stride from the array
            try:
                with self._instance_lock:
                    self._ndi.send_send_video_v2(self._instance, frame)
            except Exception as exc:  # the runtime failed: report on the node, stop sending
                self.error = OutputError(f"NDI send failed ({one_line(exc)})")
                self._worker.stop(drain=False)
                return
            self.sent += 1
            self._worker.recycle(buf)
