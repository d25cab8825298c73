"""The capture process: one PortAudio input stream, its blocks written into a SharedRing.

Why a process of its own: when a JACK server dies under an open stream, every later PortAudio call in
that process (stop, close, terminate, the exit handler) blocks for good. Here that costs only this
process, which the parent kills and replaces; the editor and the render thread never wait on it. A
fresh process also scans the host APIs afresh, so a server started after the show began is found.

Run by live_source.py as `python -m autolume_graph.audio.capture_process (--list | --open DEVICE
--block N)`. It prints one JSON line (the devices, or what it opened, or why it could not) and, when
streaming, runs until its stdin closes (the parent went away or let it go) or the stream ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

from autolume_graph.audio.shared_ring import SharedRing, ring_folder

MAX_CHANNELS = 16  # the most input channels opened (the chooser's 1..N and the mix)
RING_S = 2.0  # seconds of audio the ring holds


def _report(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _inputs(sd: Any) -> list[tuple[str, int]]:
    """(stable name, index) of every input-capable device: its name and host API, as PortAudio reports them."""
    hostapis = sd.query_hostapis()
    return [(f"{d['name']} ({hostapis[d['hostapi']]['name']})", d["index"])
            for d in sd.query_devices() if d["max_input_channels"] > 0]


def _resolve(sd: Any, wanted: str) -> tuple[str, int]:
    """The device `wanted` names ("" the default input; a bare device name when only one has it)."""
    inputs = _inputs(sd)
    if not inputs:
        raise LookupError("no audio input found (is the audio server, e.g. JACK, running?)")
    if not wanted:
        default = sd.default.device[0]
        found = [item for item in inputs if item[1] == default]
        return found[0] if found else inputs[0]
    found = [item for item in inputs if item[0] == wanted] or [item for item in inputs
                                                               if item[0].rsplit(" (", 1)[0] == wanted]
    if len(found) != 1:
        names = ", ".join(name for name, _ in inputs[:4]) + (", ..." if len(inputs) > 4 else "")
        raise LookupError(f"no audio input {wanted!r} (found: {names})")
    return found[0]


def _stream(sd: Any, wanted: str, block: int) -> None:
    name, index = _resolve(sd, wanted)
    info = sd.query_devices(index)
    channels = min(int(info["max_input_channels"]), MAX_CHANNELS)
    rate = int(info["default_samplerate"])
    ring = SharedRing.create(ring_folder(), int(RING_S * rate), channels, rate)
    done = threading.Event()

    def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            ring.count_dropout()
        ring.append(indata)

    try:
        stream = sd.InputStream(device=index, channels=channels, samplerate=rate, blocksize=block, dtype="float32",
                                callback=callback, finished_callback=done.set)
        stream.start()
    except Exception:
        ring.remove()
        raise
    _report({"ring": str(ring.path), "device": name, "rate": rate, "channels": channels, "block": block})
    let_go = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), let_go.set(), done.set()), daemon=True).start()
    done.wait()
    if let_go.is_set():  # leave the server cleanly (with a dead one this blocks: the parent kills us)
        stream.abort()
        stream.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="capture_process")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--open", default="")
    parser.add_argument("--block", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import sounddevice as sd  # raises OSError where PortAudio is missing
    except OSError as exc:
        sd = None
        _report({"error": f"PortAudio cannot load ({_one_line(exc)})"})
    try:
        if sd is not None and args.list:
            _report({"devices": [name for name, _ in _inputs(sd)]})
        elif sd is not None:
            _stream(sd, args.open, args.block)
    except Exception as exc:  # noqa: BLE001 - the parent shows it as one line
        _report({"error": _one_line(exc)})
    sys.stdout.flush()
    os._exit(0)  # not through PortAudio's exit handler: with a dead server it never returns


if __name__ == "__main__":
    main()
