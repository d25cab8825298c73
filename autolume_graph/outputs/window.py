"""The projector window: a child process showing frames the render thread writes to shared memory.

Why a child process: Dear PyGui allows one viewport per process (the editor's), and a projector
window must not share the editor's frame rate or stall the render loop. Frames are not pickled:
the parent copies each frame into a shared-memory segment and the child shows the latest one.

Segment layout: a header of int64 fields (see the constants), then BGRX pixels. The parent writes
frames under a sequence lock (`SEQ` odd while writing); the child copies a frame only when `SEQ`
is even and unchanged across the copy, so it never shows a torn frame, and writes the frame
number it has shown to `ACK`. The segment holds frames up to `MIN_CAPACITY` bytes (pages are
only allocated when written); a larger frame needs a new window.

Monitor placement: Dear PyGui cannot list monitors and its own fullscreen always takes the
primary one, so "fullscreen" is a borderless window covering the chosen monitor's rectangle. The
rectangles come from `screeninfo` (RandR or Xinerama on X11, the system's own on Windows and
macOS); where it finds no display, monitors are assumed to be `FALLBACK_MONITOR` sized and side
by side, so monitor N starts at x = N * 1920.

The child exits when its window is closed, when the parent sets `STOP`, or when the parent dies.
Windows still open when the parent's interpreter exits are closed by `close_all` (registered with
atexit), so no child outlives the show and no segment is left for the resource tracker to complain of.
Run as ``python -m autolume_graph.outputs.window SEGMENT_NAME``.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import time
import weakref
from multiprocessing import resource_tracker, shared_memory

import numpy as np

MAGIC, WIDTH, HEIGHT, SEQ, ACK, MONITOR, FULLSCREEN, STOP = range(8)
HEADER_BYTES = 64
MAGIC_VALUE = 0x41474F57  # "AGOW"
MIN_CAPACITY = 4096 * 4096 * 4
FALLBACK_MONITOR = (1920, 1080)

_open: weakref.WeakSet[WindowProcess] = weakref.WeakSet()


def close_all() -> None:
    """Close every window still open (at exit: see the module docstring)."""
    for window in list(_open):
        window.close()


atexit.register(close_all)


class WindowProcess:
    """The render side of one projector window: owns the shared memory and the child process."""

    def __init__(self, width: int, height: int, monitor: int = 0, fullscreen: bool = True) -> None:
        self.capacity = max(width * height * 4, MIN_CAPACITY)
        self._shm = shared_memory.SharedMemory(create=True, size=HEADER_BYTES + self.capacity)
        self._header = np.ndarray((8,), np.int64, buffer=self._shm.buf)
        self._header[:] = 0
        self._header[MAGIC] = MAGIC_VALUE
        self.configure(monitor, fullscreen)
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, self._shm.name],
                                      stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        _open.add(self)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def shown(self) -> int:
        """How many frames the child has shown (the frame number it acknowledged)."""
        return int(self._header[ACK])

    def fits(self, width: int, height: int) -> bool:
        return width * height * 4 <= self.capacity

    def configure(self, monitor: int, fullscreen: bool) -> None:
        """Move the window: the child applies it on its next frame."""
        self._header[MONITOR], self._header[FULLSCREEN] = monitor, int(fullscreen)

    def show(self, bgra: np.ndarray) -> None:
        """Copy an HxWx4 uint8 frame in; the child shows the latest one (the frame must `fit`)."""
        h, w = bgra.shape[:2]
        seq = int(self._header[SEQ])
        self._header[SEQ] = seq + 1
        self._header[WIDTH], self._header[HEIGHT] = w, h
        np.copyto(np.ndarray((h, w, 4), np.uint8, buffer=self._shm.buf, offset=HEADER_BYTES), bgra)
        self._header[SEQ] = seq + 2

    def exit_reason(self) -> str:
        """Why the child ended: "" when its window was closed, else its last line or exit code."""
        if self._proc.returncode == 0:
            return ""
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self._proc.returncode}"

    def close(self) -> None:
        """Ask the child to exit (kill it if it does not), then free the segment. Idempotent."""
        if self._shm is None:
            return
        self._header[STOP] = 1
        try:
            self._proc.wait(2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        del self._header
        self._shm.close()
        self._shm.unlink()
        self._shm = None
        self._log.close()
        _open.discard(self)


def monitor_rect(index: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of monitor `index` (wrapping to the monitors there are), else assumed."""
    try:
        from screeninfo import get_monitors

        monitors = get_monitors()
    except Exception:  # no display it understands: fall back to side by side
        monitors = []
    if monitors:
        m = monitors[index % len(monitors)]
        return m.x, m.y, m.width, m.height
    width, height = FALLBACK_MONITOR
    return index * width, 0, width, height


def _place(dpg, monitor: int, fullscreen: bool, width: int, height: int) -> None:
    x, y, mw, mh = monitor_rect(monitor)
    if fullscreen:
        dpg.set_viewport_decorated(False)
        dpg.set_viewport_pos([x, y])
        dpg.set_viewport_width(mw)
        dpg.set_viewport_height(mh)
    else:
        dpg.set_viewport_decorated(True)
        dpg.set_viewport_pos([x + 40, y + 40])
        dpg.set_viewport_width(min(width, mw - 80))
        dpg.set_viewport_height(min(height, mh - 80))


def _fit(dpg, image: int | str, width: int, height: int) -> None:
    """Scale the image to the viewport, keeping its aspect ratio, centred (letterbox)."""
    vw, vh = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
    scale = min(vw / width, vh / height)
    w, h = max(int(width * scale), 1), max(int(height * scale), 1)
    dpg.configure_item(image, width=w, height=h)
    dpg.set_item_pos(image, [(vw - w) // 2, (vh - h) // 2])


def run_child(name: str) -> int:
    """The child's main loop: show the latest frame of segment `name` until told to stop."""
    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")  # the parent owns (and unlinks) the segment
    header = np.ndarray((8,), np.int64, buffer=shm.buf)
    if header[MAGIC] != MAGIC_VALUE:
        print(f"{name} is not a projector window segment", file=sys.stderr)
        return 2
    parent = os.getppid()
    import dearpygui.dearpygui as dpg

    dpg.create_context()
    dpg.create_viewport(title="autolume-graph output", width=640, height=480, clear_color=(0, 0, 0, 255))
    with dpg.theme() as theme, dpg.theme_component(dpg.mvAll):
        dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 0, 0)
        dpg.add_theme_style(dpg.mvStyleVar_WindowBorderSize, 0)
        dpg.add_theme_color(dpg.mvThemeCol_WindowBg, (0, 0, 0, 255))
    registry = dpg.add_texture_registry()
    tag = dpg.add_raw_texture(1, 1, np.zeros(4, np.float32), format=dpg.mvFormat_Float_rgba, parent=registry)
    with dpg.window(no_scrollbar=True) as window:
        image = dpg.add_image(tag)
    dpg.bind_item_theme(window, theme)
    dpg.setup_dearpygui()
    dpg.show_viewport()
    dpg.set_primary_window(window, True)
    texture: np.ndarray | None = None
    shown_seq, placed = -1, None
    try:
        while dpg.is_dearpygui_running() and not header[STOP] and os.getppid() == parent:
            seq = int(header[SEQ])
            fresh = seq != shown_seq and seq % 2 == 0 and header[WIDTH] > 0
            if fresh:
                w, h = int(header[WIDTH]), int(header[HEIGHT])
                pixels = np.ndarray((h, w, 4), np.uint8, buffer=shm.buf, offset=HEADER_BYTES)[..., (2, 1, 0, 3)]
                fresh = int(header[SEQ]) == seq  # not rewritten while copying
            if fresh:
                if texture is None or texture.shape[:2] != (h, w):
                    texture = np.empty((h, w, 4), np.float32)
                    old, tag = tag, dpg.add_raw_texture(w, h, texture, format=dpg.mvFormat_Float_rgba, parent=registry)
                    dpg.configure_item(image, texture_tag=tag)
                    dpg.delete_item(old)
                np.multiply(pixels, np.float32(1 / 255), out=texture)
                dpg.set_value(tag, texture)
                shown_seq = seq
            settings = (int(header[MONITOR]), bool(header[FULLSCREEN]))
            if texture is not None and settings != placed:
                _place(dpg, *settings, texture.shape[1], texture.shape[0])
                placed = settings
            if texture is not None:
                _fit(dpg, image, texture.shape[1], texture.shape[0])
            dpg.render_dearpygui_frame()
            if fresh:
                header[ACK] = shown_seq // 2
            else:
                time.sleep(0.001)
    finally:
        dpg.destroy_context()
        del header
        shm.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_child(sys.argv[1]))
