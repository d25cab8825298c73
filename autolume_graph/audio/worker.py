"""Runs the analysis on a thread of its own, so the frame only hands over samples and reads the latest result.

The frame puts each span on a bounded queue and takes what is ready. Triggers that fired in spans
analysed since the last take are kept (OR-ed), so an onset is never lost because two spans were
analysed between two frames. A full queue drops the oldest span: live, a late analysis is worth less
than a current one.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import replace

from autolume_graph.audio.analysis import AnalysisConfig, Analyzer, Features
from autolume_graph.audio.file_source import AudioSpan

QUEUE_SPANS = 8  # spans waiting at most: a few frames


class AnalysisWorker:
    """One analysis thread; `submit` and `take` never block, `wait` blocks only as long as asked."""

    def __init__(self) -> None:
        self._spans: queue.Queue[tuple[int, AnalysisConfig, AudioSpan] | None] = queue.Queue(QUEUE_SPANS)
        self._lock = threading.Condition()
        self._latest: Features | None = None
        self._fired = (False, False)  # onset, beat since the last take
        self._done = 0  # the serial of the last span analysed
        self._serial = 0
        self._failure = ""
        self._thread = threading.Thread(target=self._run, name="audio-analysis", daemon=True)
        self._thread.start()

    def submit(self, span: AudioSpan, config: AnalysisConfig) -> int:
        """Queue `span` for analysis under `config`; returns its serial (for `wait`)."""
        self._serial += 1
        self._put((self._serial, config, span))
        return self._serial

    def wait(self, serial: int, timeout: float) -> bool:
        """Wait until span `serial` is analysed (an offline frame does); whether it was within `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: self._done >= serial, timeout)

    def take(self) -> Features | None:
        """The latest features, with the triggers that fired since the last take; None before any; a failure
        of the analysis raises here, on the reader's thread."""
        with self._lock:
            if self._failure:
                failure, self._failure = self._failure, ""
                raise RuntimeError(failure)
            if self._latest is None:
                return None
            onset, beat = self._fired
            self._fired = (False, False)
            return replace(self._latest, onset=onset, beat=beat)

    def close(self) -> None:
        """End the thread once the spans already queued are analysed (at most a second is waited)."""
        self._put(None)
        self._thread.join(timeout=1.0)

    def _put(self, item: tuple[int, AnalysisConfig, AudioSpan] | None) -> None:
        """Queue `item`, dropping the oldest queued spans while the queue is full."""
        while True:
            try:
                self._spans.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._spans.get_nowait()
                except queue.Empty:
                    pass

    def _run(self) -> None:
        analyzer: Analyzer | None = None
        while (item := self._spans.get()) is not None:
            serial, config, span = item
            try:
                if analyzer is None or span.restarted or analyzer.config != config:
                    analyzer = Analyzer(config)
                features = analyzer.feed(span.samples)
                failure = ""
            except Exception as exc:  # noqa: BLE001 - shown on the node, the thread lives on
                features, failure, analyzer = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, None
            with self._lock:
                if features is not None:
                    self._latest = features
                    self._fired = (self._fired[0] or features.onset, self._fired[1] or features.beat)
                self._failure = failure or self._failure
                self._done = serial
                self._lock.notify_all()
