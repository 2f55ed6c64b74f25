"""Puts one track's frames back in order: late, duplicate and missing frames.

Carriers stamp each chunk with its position in the stream. Frames can arrive twice or
out of order (retransmits, reconnect buffers) and some never arrive. Downstream
(recording, VAD, audio time) needs a gap-free sample stream, so this keeps a few frames
in hand, releases them in timestamp order, drops what was already released and fills
holes with silence.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass
class OrderingStats:
    stale: int = 0  # duplicates, and frames older than what was already released
    gap_samples: int = 0
    resyncs: int = 0


class FrameOrderer:
    def __init__(self, sample_rate: int, depth: int = 5, max_gap_s: float = 5.0) -> None:
        self.sample_rate = sample_rate
        self.depth = depth  # frames held before a hole is declared lost (5 x 20 ms)
        self.max_gap = int(max_gap_s * sample_rate)
        self.next_sample = 0  # position (in samples) of the next sample to release
        self.stats = OrderingStats()
        self._heap: list[tuple[int, bytes]] = []
        self._queued: set[int] = set()

    def push(self, t: float, pcm16: bytes) -> list[bytes]:
        """Accept a frame stamped at `t` seconds; return PCM ready to release, in order."""
        start = round(t * self.sample_rate)
        end = start + len(pcm16) // 2
        if end <= self.next_sample or start in self._queued:
            self.stats.stale += 1
            return []
        self._queued.add(start)
        heapq.heappush(self._heap, (start, pcm16))
        return self._release(force=False)

    def flush(self) -> list[bytes]:
        return self._release(force=True)

    def _release(self, force: bool) -> list[bytes]:
        out: list[bytes] = []
        while self._heap:
            start, pcm = self._heap[0]
            if start > self.next_sample and not force and len(self._heap) <= self.depth:
                break  # wait: the missing frame may still arrive
            heapq.heappop(self._heap)
            self._queued.discard(start)
            if start > self.next_sample:
                gap = start - self.next_sample
                if gap > self.max_gap:
                    # A jump this large is a clock reset, not loss: don't write minutes of silence.
                    self.stats.resyncs += 1
                else:
                    self.stats.gap_samples += gap
                    out.append(b"\x00\x00" * gap)
                self.next_sample = start
            elif start < self.next_sample:
                overlap = self.next_sample - start
                pcm = pcm[overlap * 2 :]
                if not pcm:
                    continue
            out.append(pcm)
            self.next_sample += len(pcm) // 2
        return out
