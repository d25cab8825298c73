"""A real NDI receiver on loopback for the NDI tests (no mDNS: a finder with extra IP 127.0.0.1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

import numpy as np


def find_url(ndi: ModuleType, source_name: str, timeout: float = 5.0) -> str:
    """Discover `source_name` by asking 127.0.0.1 directly (mDNS is not running here)."""
    finder = ndi.find_create_v2(ndi.FindCreate(show_local_sources=True, p_extra_ips="127.0.0.1"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ndi.find_wait_for_sources(finder, 200)
            for src in ndi.find_get_current_sources(finder):
                if src.ndi_name == source_name:
                    return src.url_address
        raise AssertionError(f"{source_name!r} not found via 127.0.0.1")
    finally:
        ndi.find_destroy(finder)


def connect_receiver(ndi: ModuleType, url: str) -> object:
    """A BGRX receiver connected by address only (no name needed)."""
    settings = ndi.RecvCreateV3()
    settings.color_format = ndi.RECV_COLOR_FORMAT_BGRX_BGRA
    recv = ndi.recv_create_v3(settings)
    assert recv is not None
    ndi.recv_connect(recv, ndi.Source(p_url_address=url))
    return recv


def receive(ndi: ModuleType, recv: object, push: Callable[[], None], shape: tuple[int, int],
            timeout: float = 10.0) -> tuple[np.ndarray, int, int, int]:
    """Call `push` until a video frame of `shape` (h, w) arrives; returns (pixels copy, rate N, rate D, FourCC)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        push()
        kind, video, _, _ = ndi.recv_capture_v2(recv, 50)
        if kind == ndi.FRAME_TYPE_VIDEO:
            try:
                if (video.yres, video.xres) == tuple(shape):
                    return video.data.copy(), video.frame_rate_N, video.frame_rate_D, video.FourCC
            finally:
                ndi.recv_free_video_v2(recv, video)
    raise AssertionError("no video frame received over loopback")

