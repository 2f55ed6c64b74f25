"""Composition root: builds settings, store, bus, ASR engine and classifier; mounts routes.

One binary, four roles (STREAM_SERVER_ROLE): `all` does everything in one process; `ingest`
runs calls and queues their speech for `asr` workers on Redis; `gateway` serves the API and the
supervisor feed. Nothing else in the package imports this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from . import __version__, exposure
from .alerts.policy import AlertPolicyOptions
from .alerts.rules import CallRuleOptions
from .alerts.webhooks import AlertNotifier, RetryPolicy
from .api import admin, alerts, calls, console, exports, health, media, reports, retention, supervisor, webrtc
from .api import errors as api_errors
from .api import metrics as metrics_endpoint
from .api import webhooks as webhooks_endpoint
from .api.audiosocket_server import AudioSocketServer
from .asr.baseline import TranscribeBaseline
from .asr.engine import AsrEngine, AsrOptions
from .asr.queue import AsrWorker, RemoteAsr
from .asr.scheduler import AsrScheduler
from .bus import EventBus, create_bus
from .classifiers import voice
from .classifiers.text import TextAbuseClassifier, default_model_path
from .config import Settings
from .media.events import CallEnded
from .media.vad import VadOptions
from .memory import MemoryTrimmer
from .metrics import ServerMetrics
from .pipeline.durability import StorageRetry, announce_storage_changes
from .pipeline.session import CallServices, SessionOptions
from .store.access import AccessStore
from .store.recordings import RecordingStore
from .store.recovery import recover_calls
from .store.repository import CallStore
from .store.storage_health import StorageHealth
from .store.writer import StoreWriter

log = logging.getLogger("stream_server")

# What each role serves. Every role answers /healthz and /metrics.
ROUTERS = {
    "all": (health, metrics_endpoint, calls, alerts, reports, exports, supervisor, webhooks_endpoint, admin,
            retention, media, webrtc),
    "ingest": (health, metrics_endpoint, media, webrtc),
    "asr": (health, metrics_endpoint),
    "gateway": (health, metrics_endpoint, calls, alerts, reports, exports, supervisor, webhooks_endpoint, admin,
                retention),
}


def asr_options(settings: Settings) -> AsrOptions:
    workers = 1 if settings.asr_pipeline == "baseline" else settings.asr_workers  # baseline: one at a time
    return AsrOptions(
        model=settings.asr_model,
        compute_type=settings.asr_compute_type,
        cpu_threads=max(1, settings.asr_threads // workers),
        workers=workers,
        beam_size=settings.asr_beam_size,
        allowed_languages=settings.language_list,
        trim_window=settings.asr_min_window_s < 30.0,
        min_window_s=settings.asr_min_window_s,
    )


def session_options(
    settings: Settings, classifier: TextAbuseClassifier, detector: voice.ShoutingDetector | None = None
) -> SessionOptions:
    """Thresholds: the models' own, then STREAM_SERVER_ALERT_THRESHOLD for every text category,
    then STREAM_SERVER_ALERT_THRESHOLDS per category (the most specific setting wins)."""
    thresholds = dict(classifier.thresholds)
    if settings.alert_threshold is not None:
        thresholds = {c: settings.alert_threshold for c in classifier.categories}
    if detector is not None:
        thresholds["shouting"] = detector.threshold
    thresholds.update(settings.alert_thresholds)
    return SessionOptions(
        vad=VadOptions(
            aggressiveness=settings.vad_aggressiveness,
            endpoint_ms=settings.endpoint_ms,
            short_endpoint_ms=settings.short_endpoint_ms,
            max_utterance_s=settings.max_utterance_s,
        ),
        policy=AlertPolicyOptions(
            thresholds=thresholds, severities=dict(settings.alert_severities), cooldown_s=settings.alert_cooldown_s
        ),
        rules=CallRuleOptions(
            prolonged_call_minutes=settings.prolonged_call_minutes,
            repeat_calls=settings.repeat_calls,
            repeat_window_hours=settings.repeat_window_hours,
        ),
        partial_interval_s=settings.partial_interval_s,
        voice_window_s=settings.voice_window_s,
        voice_window_interval_s=settings.voice_window_interval_s,
        partial_tracks=() if settings.asr_pipeline == "baseline" else ("caller",),
        language=settings.language,
    )


def load_classifier(settings: Settings) -> TextAbuseClassifier:
    return TextAbuseClassifier(settings.text_model or default_model_path())


def load_voice_detector(settings: Settings) -> voice.ShoutingDetector | None:
    """The shouting model, loaded and warmed up; None when
    voice alerts are off."""
    if not settings.voice_alerts:
        return None
    detector = voice.ShoutingDetector(settings.voice_model or voice.default_model_path())
    detector.warm_up()
    return detector


async def build_services(settings: Settings, metrics: ServerMetrics | None = None) -> CallServices:
    """Everything a CallSession needs; the ASR model is loaded and warmed up here. If a later
    part fails (database, model), what was already started is stopped again: a failed start
    must not leave a Redis connection or ASR workers running in the process."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as undo:
        bus = create_bus(settings.bus, settings.bus_prefix)
        await bus.start()  # first: an unreachable Redis fails start-up before the model loads
        undo.push_async_callback(bus.stop)
        store = CallStore(settings.resolved_database_url, settings.database_auto_migrate, settings.resolved_node_name)
        undo.callback(store.close)
        classifier = load_classifier(settings)
        detector = await asyncio.to_thread(load_voice_detector, settings) if settings.role != "asr" else None
        asr: AsrScheduler | RemoteAsr | None = None
        if settings.role in ("all", "asr"):
            asr = await start_local_asr(settings)
        elif settings.role == "ingest":  # speech goes to the asr role's workers
            asr = RemoteAsr(settings.bus, settings.bus_prefix)
            await asr.start()
        if asr is not None:
            undo.push_async_callback(asr.stop)
        health = StorageHealth()
        announce_storage_changes(health, bus)
        services = CallServices(
            store=store,
            recordings=RecordingStore(settings.data_dir / "recordings", health, settings.recording_hold_s),
            bus=bus,
            asr=asr,
            scorer=classifier,
            voice=detector,
            writer=StoreWriter(ThreadPoolExecutor(max_workers=1, thread_name_prefix="db"), health),
            options=session_options(settings, classifier, detector),
            metrics=metrics or ServerMetrics(),
        )
        undo.pop_all()  # all started: from here on close_services stops them
    return services


async def start_local_asr(settings: Settings) -> AsrScheduler:
    """The model in this process: loaded, warmed up, its worker threads running."""
    baseline = settings.asr_pipeline == "baseline"
    engine_class = TranscribeBaseline if baseline else AsrEngine
    engine = await asyncio.to_thread(engine_class, asr_options(settings), settings.resolved_model_cache_dir)
    await asyncio.to_thread(engine.warm_up)
    scheduler = AsrScheduler(
        engine,
        max_batch=1 if baseline else settings.asr_max_batch,
        agent_max_batch=1 if baseline else settings.asr_agent_max_batch,
        agent_draft=settings.asr_agent_draft,
        workers=engine.options.workers,
    )
    scheduler.start()
    return scheduler


async def close_services(services: CallServices) -> None:
    """Stop everything build_services started, in order; one part failing to stop does not
    keep the others running."""
    async with AsyncExitStack() as stack:  # runs bottom-up: bus, ASR, db thread, store
        stack.callback(services.store.close)
        stack.callback(services.writer.executor.shutdown, wait=True)
        if services.asr is not None:
            stack.push_async_callback(services.asr.stop)
        stack.push_async_callback(services.bus.stop)


async def end_calls(state: Any) -> None:
    """Shutdown: hang up the softphones and end every other call (`server_shutdown`), so each
    recording is closed and each call stored while the store and bus are still there."""
    await webrtc.close_all_calls(state)
    for session in list(state.active_calls.values()):
        await session.end(CallEnded("server_shutdown"))


def recover_interrupted_calls(services: CallServices) -> None:
    """Start-up: this node's calls that a dead process left active are marked interrupted, their
    WAV headers repaired to the audio in the files, their durations set and recordings sealed."""
    interrupted = services.store.mark_unfinished_calls_interrupted()
    if interrupted:
        log.warning("marked %d calls left active by a previous run as interrupted", len(interrupted))
        for call in recover_calls(services.store, services.recordings, interrupted):
            log.warning("recovered call %s: %.1f s of recording in %d files", call.call_id, call.duration,
                        len(call.files))


def audiosocket_server(state: Any, settings: Settings) -> AudioSocketServer:
    return AudioSocketServer(state, settings.audiosocket_host, settings.audiosocket_port, settings.audiosocket_allow,
                             settings.max_bad_messages, settings.audiosocket_idle_timeout_s)


def alert_notifier(bus: EventBus, settings: Settings) -> AlertNotifier:
    """Webhook notifications for STREAM_SERVER_WEBHOOKS (started only in roles all and gateway)."""
    policy = RetryPolicy(attempts=settings.webhook_attempts, first_delay_s=settings.webhook_backoff_s)
    return AlertNotifier(bus, settings.webhooks, policy, settings.webhook_timeout_s, settings.console_url)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Unwinds bottom-up, at shutdown or when a later start-up step fails: the AudioSocket
        # listener stops, calls end, then the services they write to are closed.
        async with AsyncExitStack() as running:
            services = app.state.services = await build_services(settings, app.state.metrics)
            running.push_async_callback(close_services, services)
            # Before any socket is served: an exposed dev server or an unsafe production one stops here.
            has_users = await asyncio.to_thread(AccessStore(services.store).has_users)
            app.state.open_doors = exposure.check_startup(settings, has_users)
            # Stopped after end_calls (the stack unwinds bottom-up): the alerts of calls the
            # shutdown ends still go out; before close_services, which stops the bus.
            notifier = app.state.webhooks = alert_notifier(services.bus, settings)
            if settings.role in ("all", "gateway"):  # a gateway sees every node's alerts on Redis
                await notifier.start()
                running.push_async_callback(notifier.stop)
            # One purge job per deployment: role all's, or in scale-out the gateway's (not ingest's).
            # Stopped before close_services: a run in progress finishes its call first.
            app.state.retention_job = None
            if settings.role in ("all", "gateway"):
                app.state.retention_job = await retention.start_job(services, settings, app.state.metrics)
                if app.state.retention_job is not None:
                    running.push_async_callback(app.state.retention_job.stop)
            # Stopped after end_calls: the calls' last rows and audio get one more try.
            storage_retry = StorageRetry(services)
            await storage_retry.start()
            running.push_async_callback(storage_retry.stop)
            trimmer = MemoryTrimmer(settings.memory_trim_interval_s)
            await trimmer.start()
            running.push_async_callback(trimmer.stop)
            running.push_async_callback(end_calls, app.state)
            if settings.role == "asr":  # take speech from every ingest node's queue
                worker = AsrWorker(services.asr, settings.bus, settings.bus_prefix, settings.asr_claim_idle_s)
                await worker.start()
                running.push_async_callback(worker.stop)
                app.state.asr_worker = worker
            if settings.role in ("all", "ingest"):
                await asyncio.to_thread(recover_interrupted_calls, services)
            log.info("stream_server %s ready: role %s, model %s, database %s", __version__, settings.role,
                     settings.asr_model, settings.resolved_database_url.split("@")[-1])
            if settings.audiosocket_port and settings.role in ("all", "ingest"):
                # Asterisk AudioSocket is raw TCP, beside the HTTP server
                listener = audiosocket_server(app.state, settings)
                await listener.start()
                running.push_async_callback(listener.stop)
            yield

    app = FastAPI(
        title="stream_server",
        version=__version__,
        description="Real-time call-audio analysis: live abuse alerts for contact-centre supervisors.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.active_calls = {}
    app.state.metrics = ServerMetrics()  # this app's own registry, scraped at GET /metrics
    metrics_endpoint.watch_app(app.state.metrics, app.state)
    api_errors.install(app, settings.http_max_body_bytes)
    for module in ROUTERS[settings.role]:
        app.include_router(module.router)
    if settings.role in ("all", "gateway"):  # the console reads the API and feed of this node
        app.include_router(console.router)
        console.mount_assets(app)
    return app
