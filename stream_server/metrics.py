"""Prometheus metrics of one server process, served at `GET /metrics`.

Data flows one way: the pipeline calls the typed `record`-style methods below where
something happens (a call starts, an alert is raised), and what already exists as state
(active calls, the ASR scheduler's queue and stats, the bus) is read only when Prometheus
scrapes, by `_LiveCollector`. Nothing outside this module imports prometheus_client, and
every app gets its own registry, so several apps in one test process never collide.

Latencies are measured from the end of the utterance *in audio time*, mapped to the wall
clock by the moment that audio arrived (carriers stream in real time), the same yardstick
as `benchmarks/capacity.py`: the server's own histogram and the benchmark can be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .alerts.alert import Alert
    from .asr.scheduler import AsrScheduler
    from .store.storage_health import StorageHealth

PREFIX = "stream_server"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# 2.5 s is the capacity benchmark's p95 target: `le="2.5"` / count is the share within it.
LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 16)


@dataclass(frozen=True)
class LiveState:
    """What the process holds right now; read at scrape time."""

    carriers: list[str]  # carrier of each active call on this node
    asr: AsrScheduler | None  # None before start-up finished, or on a node without ASR
    bus: Any | None
    storage: StorageHealth | None = None


class MediaCounter:
    """One call's frame/byte counters, bound to its carrier once: push_audio runs 50 times a
    second per track, so the label lookup is not repeated per frame."""

    def __init__(self, frames: Any, received_bytes: Any) -> None:
        self._frames = frames
        self._bytes = received_bytes

    def received(self, pcm_bytes: int) -> None:
        self._frames.inc()
        self._bytes.inc(pcm_bytes)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._calls_started = Counter(
            f"{PREFIX}_calls_started", "Calls whose media stream started on this node.", ["carrier"], registry=r
        )
        self._calls_ended = Counter(
            f"{PREFIX}_calls_ended",
            "Calls ended on this node, by how they ended (completed, disconnected, protocol_error, "
            "server_shutdown, ...).",
            ["carrier", "reason"],
            registry=r,
        )
        self._frames = Counter(
            f"{PREFIX}_media_frames_received", "Audio frames received from carriers (all tracks).", ["carrier"],
            registry=r,
        )
        self._bytes = Counter(
            f"{PREFIX}_media_received_bytes",
            "Audio received from carriers, in bytes of 16-bit PCM after decoding (G.711 doubles in size).",
            ["carrier"],
            registry=r,
        )
        self._malformed = Counter(
            f"{PREFIX}_media_malformed_messages",
            "Malformed carrier messages dropped, counted when their call ends.",
            ["carrier"],
            registry=r,
        )
        self._asr_lag = Histogram(
            f"{PREFIX}_asr_lag_seconds",
            "Seconds from the end of an utterance (its last audio arriving) to its final transcript: VAD "
            "endpointing silence + waiting for an ASR worker + decoding. Grows when ASR is over capacity.",
            ["track"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._alerts = Counter(
            f"{PREFIX}_alerts", "Alerts raised on this node's calls.", ["category", "severity", "rule"], registry=r
        )
        self._alert_latency = Histogram(
            f"{PREFIX}_alert_latency_seconds",
            "Seconds from the end of the abusive utterance in audio time (when its last audio arrived) to "
            "its alert being handed to the bus, for alerts raised from transcripts (an alert from an "
            "interim transcript counts from the end of the speech heard so far). Call rules "
            "(prolonged_call, repeat_caller) are not included.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._published = Counter(
            f"{PREFIX}_bus_events_published", "Events this node's calls published on the bus.", ["type"], registry=r
        )
        self._purged = Counter(
            f"{PREFIX}_retention_purged_items",
            "Items removed by retention and deletion requests on this node: recordings (files), segments, alerts, "
            "alert_actions, calls (whole calls, by deletion request).",
            ["kind"],
            registry=r,
        )
        self._state: Callable[[], LiveState] | None = None
        r.register(_LiveCollector(self))

    # -- where things happen ----------------------------------------------------------

    def call_started(self, carrier: str) -> None:
        self._calls_started.labels(carrier).inc()

    def call_ended(self, carrier: str, reason: str, malformed_messages: int) -> None:
        self._calls_ended.labels(carrier, reason).inc()
        if malformed_messages:
            self._malformed.labels(carrier).inc(malformed_messages)

    def media(self, carrier: str) -> MediaCounter:
        return MediaCounter(self._frames.labels(carrier), self._bytes.labels(carrier))

    def final_transcript(self, track: str, spoken_at: float) -> None:
        """`spoken_at`: time.monotonic() when the utterance's last audio arrived."""
        self._asr_lag.labels(track).observe(max(0.0, time.monotonic() - spoken_at))

    def alert_raised(self, alert: Alert, spoken_at: float | None) -> None:
        """`spoken_at` as in final_transcript; None for call-rule alerts (no utterance)."""
        self._alerts.labels(alert.category, alert.severity, alert.rule).inc()
        if spoken_at is not None:
            self._alert_latency.observe(max(0.0, time.monotonic() - spoken_at))

    def event_published(self, event_type: str) -> None:
        self._published.labels(event_type).inc()

    def retention_purged(self, removed: dict[str, int]) -> None:
        """`removed`: items per kind, as a purge or deletion report counts them."""
        for kind, items in removed.items():
            if items:
                self._purged.labels(kind).inc(items)

    # -- state read at scrape time ------------------------------------------------------

    def watch(self, state: Callable[[], LiveState]) -> None:
        self._state = state

    def live_state(self) -> LiveState | None:
        return self._state() if self._state is not None else None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = self._metrics.live_state()
        if state is None:
            return
        active = GaugeMetricFamily(f"{PREFIX}_active_calls", "Calls streaming to this node now.", labels=["carrier"])
        for carrier, count in _count(state.carriers).items():
            active.add_metric([carrier], count)
        yield active
        if state.asr is not None:
            yield from _asr_metrics(state.asr)
        if state.bus is not None:
            yield from _bus_metrics(state.bus)
        if state.storage is not None:
            yield from _storage_metrics(state.storage)


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _asr_metrics(asr: AsrScheduler) -> Iterator[Metric]:
    work = "work"  # caller_final, caller_partial, agent_final, agent_partial (priority order)
    queued = GaugeMetricFamily(
        f"{PREFIX}_asr_queued_utterances",
        "Utterances waiting for an ASR worker, by kind of work. caller_final feeds alerts: if it stays "
        "above zero the node is over capacity; agent_final waiting is deferred QA work, by design.",
        labels=[work],
    )
    for name, count in asr.queued().items():
        queued.add_metric([name], count)
    yield queued
    if isinstance(getattr(asr, "backlog", None), dict):  # ingest: the model runs on the asr role's nodes
        yield from _shared_queue_metrics(asr)
        return
    busy = CounterMetricFamily(
        f"{PREFIX}_asr_busy_seconds", "Seconds ASR workers spent decoding, by kind of work.", labels=[work]
    )
    done = CounterMetricFamily(f"{PREFIX}_asr_utterances", "Utterances transcribed, by kind of work.", labels=[work])
    stats = asr.stats
    for name, seconds in stats.busy_by_class.items():
        busy.add_metric([name], seconds)
        done.add_metric([name], stats.jobs_by_class[name])
    yield busy
    yield done
    yield CounterMetricFamily(
        f"{PREFIX}_asr_audio_seconds", "Seconds of speech transcribed (busy/audio = cost per audio second).",
        value=stats.audio_seconds,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_asr_partials_skipped", "Interim transcripts dropped because the final overtook them.",
        value=stats.partials_skipped,
    )
    batches = HistogramMetricFamily(
        f"{PREFIX}_asr_batch_size", "Utterances decoded together in one model call, by kind of work.", labels=[work]
    )
    for name, sizes in stats.batch_sizes.items():
        buckets = [(str(le), sum(n for size, n in sizes.items() if size <= le)) for le in BATCH_SIZE_BUCKETS]
        buckets.append(("+Inf", sum(sizes.values())))
        batches.add_metric([name], buckets, sum_value=sum(size * n for size, n in sizes.items()))
    yield batches
    yield GaugeMetricFamily(
        f"{PREFIX}_asr_utilisation_ratio",
        f"Fraction of the last {asr.load_window_s:g} s the ASR workers spent decoding (0-1); interim "
        f"transcripts stop above {asr.max_partial_load:g}.",
        value=asr.load,
    )
    yield GaugeMetricFamily(f"{PREFIX}_asr_workers", "ASR worker threads on this node.", value=asr.workers)


def _shared_queue_metrics(asr: Any) -> Iterator[Metric]:
    """An ingest node's view of the shared ASR queue (asr/queue.py RemoteAsr)."""
    done = CounterMetricFamily(f"{PREFIX}_asr_utterances", "Utterances transcribed, by kind of work.", labels=["work"])
    for name, count in asr.stats.jobs_by_class.items():
        done.add_metric([name], count)
    yield done
    backlog = GaugeMetricFamily(
        f"{PREFIX}_asr_backlog_utterances",
        "Utterances queued or being transcribed on the asr role's workers, every ingest node's, by stream. "
        "caller staying above zero means too few workers.",
        labels=["stream"],
    )
    for stream, count in asr.backlog.items():
        backlog.add_metric([stream], count)
    yield backlog
    yield CounterMetricFamily(
        f"{PREFIX}_asr_duplicate_results",
        "Transcripts that arrived twice (a worker presumed dead finished after all); the first is used.",
        value=asr.duplicates,
    )


def _storage_metrics(health: StorageHealth) -> Iterator[Metric]:
    failing = GaugeMetricFamily(
        f"{PREFIX}_storage_failing", "1 while writes of this kind are refused (disk full, database down); "
        "what they hold waits in memory and is written when storage returns.", labels=["kind"],
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_storage_write_errors", "Writes refused by storage since start, by kind.", labels=["kind"]
    )
    for kind in ("recordings", "database"):
        failing.add_metric([kind], float(health.failing(kind)))
        errors.add_metric([kind], health.write_errors(kind))
    yield failing
    yield errors
    yield GaugeMetricFamily(
        f"{PREFIX}_recording_held_seconds", "Seconds of received audio not yet on disk, all tracks.",
        value=health.held("recordings"),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_database_held_writes", "Database writes of live calls waiting for the database.",
        value=health.held("database"),
    )


def _bus_metrics(bus: Any) -> Iterator[Metric]:
    """Read by attribute: the in-process and Redis buses expose what they have."""
    kind = getattr(bus, "kind", "unknown")
    connected = GaugeMetricFamily(
        f"{PREFIX}_bus_connected", "1 when the event bus is connected (always 1 in-process).", labels=["bus"]
    )
    connected.add_metric([kind], float(getattr(bus, "connected", True)))
    yield connected
    yield GaugeMetricFamily(
        f"{PREFIX}_supervisors", "Supervisor feed connections on this node.",
        value=getattr(bus, "subscriber_count", 0),
    )
    yield CounterMetricFamily(
        f"{PREFIX}_bus_events_dropped_slow_subscriber",
        "Events dropped for supervisors that did not keep up (their queue was full; oldest dropped first).",
        value=getattr(bus, "dropped_deliveries", 0),
    )
    if hasattr(bus, "dropped_publishes"):
        yield CounterMetricFamily(
            f"{PREFIX}_bus_events_dropped_unsent",
            "Events this node could not hand to Redis: its outbox overflowed while Redis was unreachable.",
            value=bus.dropped_publishes,
        )
    if hasattr(bus, "outbox_depth"):
        yield GaugeMetricFamily(
            f"{PREFIX}_bus_outbox_events", "Events waiting to be sent to Redis.", value=bus.outbox_depth
        )
