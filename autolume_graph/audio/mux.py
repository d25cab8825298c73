"""A song beside a rendered video: its length, and the MP4 that carries both (H.264 copied, audio as AAC).

Why a second pass: the recorder encodes the frames on its own thread into a video-only file; the audio
goes in afterwards, the video packets copied unchanged (no second encode) and the song transcoded to
AAC. Both streams start at 0, so frame i (shown at i / fps) and the audio at i / fps play together.
Packets are written in time order, so the muxer holds no more than a few in memory.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from fractions import Fraction

import av

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_BIT_RATE = 192_000


class MuxError(ValueError):
    """An audio file that cannot be read or muxed; the message is one line."""


def _failure(path: str | os.PathLike, exc: Exception) -> MuxError:
    return MuxError(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def audio_seconds(path: str | os.PathLike) -> float:
    """The length of the file's first audio stream, counted in decoded samples (exact, unlike headers)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MuxError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            rate = stream.rate
    except (OSError, av.error.FFmpegError) as exc:
        raise _failure(path, exc) from None
    if not samples or not rate:
        raise MuxError(f"{path}: no audio in it")
    return samples / rate


def mux_audio(video: str | os.PathLike, audio: str | os.PathLike, out: str | os.PathLike, seconds: float) -> None:
    """Write `out`: the video stream of `video` copied, and the first `seconds` of `audio` as AAC."""
    try:
        with av.open(str(video)) as vin, av.open(str(audio)) as ain, av.open(str(out), "w") as dst:
            if not ain.streams.audio:
                raise MuxError(f"{audio}: no audio stream")
            vsrc, asrc = vin.streams.video[0], ain.streams.audio[0]
            vdst = dst.add_stream_from_template(vsrc, opaque=True)
            rate = asrc.rate if asrc.rate in AAC_RATES else AAC_RATES[-1]
            layout = "mono" if asrc.channels == 1 else "stereo"
            adst = dst.add_stream("aac", rate=rate, layout=layout)
            adst.bit_rate = AAC_BIT_RATE
            video_packets = ((float(p.dts * p.time_base), 0, p, vdst) for p in vin.demux(vsrc) if p.dts is not None)
            audio_packets = ((float(p.dts * p.time_base), 1, p, adst) for p in _aac(ain, asrc, adst, seconds))
            for _, _, packet, stream in heapq.merge(video_packets, audio_packets, key=lambda item: item[:2]):
                packet.stream = stream
                dst.mux(packet)
    except (OSError, av.error.FFmpegError) as exc:
        raise _failure(audio, exc) from None


def _aac(container: av.container.InputContainer, source: av.audio.stream.AudioStream,
         stream: av.audio.stream.AudioStream, seconds: float) -> Iterator[av.Packet]:
    """The encoded packets of `source`'s first `seconds`, resampled to the stream's rate and layout."""
    rate = stream.codec_context.sample_rate
    layout = stream.codec_context.layout.name
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    limit, written = round(seconds * rate), 0
    time_base = Fraction(1, rate)

    def frames() -> Iterator[av.AudioFrame]:
        for frame in container.decode(source):
            yield from resampler.resample(frame)
        yield from resampler.resample(None)

    for frame in frames():
        if written >= limit:
            break
        if written + frame.samples > limit:  # the song outlasts the video: cut it at the last frame's end
            frame = av.AudioFrame.from_ndarray(frame.to_ndarray()[:, :limit - written], format="fltp", layout=layout)
            frame.sample_rate = rate
        frame.pts, frame.time_base = written, time_base
        written += frame.samples
        yield from stream.encode(frame)
    yield from stream.encode(None)
