"""All configuration in one object, read from `STREAM_SERVER_*` environment variables.

Every default works on one machine with no extra services: SQLite under the data
directory, the in-process bus, the bundled offline models.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .alerts.alert import AbuseCategory
from .alerts.webhook_targets import WebhookTargets


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAM_SERVER_", env_file=None, extra="ignore")

    # Server
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8080, description="HTTP/WebSocket port.")
    data_dir: Path = Field(Path("data"), description="Recordings and the default SQLite database live here.")
    recording_hold_s: float = Field(
        300.0, gt=0,
        description="While the disk refuses writes (full), seconds of audio per track held in memory and written "
        "when space returns; beyond that the oldest is dropped and written as silence, keeping the timeline.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/stream_server.db. PostgreSQL: postgresql+psycopg://..."
    )
    database_auto_migrate: bool = Field(
        True,
        description="Run the Alembic schema migrations at start-up. False: refuse to start unless the database "
        "is already current (`stream-server db upgrade` migrates it).",
    )
    log_level: str = Field("info", description="debug, info, warning, error.")
    memory_trim_interval_s: float = Field(
        60.0, ge=0,
        description="Every this many seconds, return the allocator's free memory to the OS (glibc malloc_trim), "
        "so an idle server does not keep the peak of a busy hour; 0 = never.",
    )
    role: Literal["all", "ingest", "asr", "gateway"] = Field(
        "all",
        description="all: one process does everything (the default). Scale-out roles share STREAM_SERVER_BUS "
        "(Redis), the database and data_dir: ingest takes carrier media and runs calls, asr transcribes "
        "for every ingest node, gateway serves the REST API and supervisor feed.",
    )
    node_name: str | None = Field(
        None,
        description="This node's stable name, stored on its calls so that its restart marks only its own "
        "unfinished calls interrupted. Default: <hostname>:<port> outside role all.",
    )

    # Event bus (supervisor feed across nodes)
    bus: str = Field(
        "memory",
        description="memory (one process) or a Redis URL, redis://host:port/db: every node's supervisors "
        "then see every node's call events.",
    )
    asr_claim_idle_s: float = Field(
        30.0, gt=0,
        description="Role asr: a queued utterance held this long by a worker that stopped answering is "
        "taken over by another worker.",
    )
    bus_prefix: str = Field(
        "stream_server", description="Redis key prefix; nodes sharing it share one feed (<prefix>:events)."
    )

    # Auth (docs/security.md)
    mode: Literal["dev", "production"] = Field(
        "dev",
        description="production: the API needs a token, and every carrier endpoint refuses streams until its "
        "credential is configured. dev (loudly logged): what is not configured is open, and the server refuses "
        "to listen on a non-loopback address while anything is open.",
    )
    api_token: str | None = Field(
        None,
        description="Bootstrap admin bearer token for the REST API and supervisor feed (users and their tokens: "
        "`stream-server users` / `tokens`). Unset with no users = open (dev mode only).",
    )
    log_mask: bool = Field(
        True, description="Mask tokens and phone numbers in log lines (the server's and uvicorn's)."
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token a Prometheus scraper may present on GET /metrics instead of api_token. "
        "/metrics is open while neither is set.",
    )
    evidence_key: str | None = Field(
        None,
        description="Key that signs evidence and training exports (HMAC-SHA256 of manifest.json). Unset = a "
        "random key created once in <data_dir>/evidence.key (mode 0600).",
    )
    twilio_auth_token: str | None = Field(
        None, description="Twilio auth token; when set, X-Twilio-Signature is required on /v1/media/twilio."
    )
    telnyx_stream_token: str | None = Field(
        None,
        description="Telnyx stream_auth_token; when set, /v1/media/telnyx requires it (x-telnyx-streaming-auth-token "
        "header or the connected frame).",
    )
    vonage_token: str | None = Field(
        None, description="Shared secret; when set, /v1/media/vonage requires ?token= or Authorization: Bearer."
    )
    audiohook_api_key: str | None = Field(
        None, description="Genesys AudioHook API key; when set, /v1/media/audiohook requires it in X-API-KEY."
    )
    audiohook_client_secret: str | None = Field(
        None,
        description="Genesys AudioHook client secret (base64); when set with the API key, the upgrade request "
        "must carry a valid HMAC-SHA256 HTTP message signature.",
    )
    stream_token: str | None = Field(
        None,
        description="Shared secret; when set, /v1/media/stream (jambonz listen, mod_audio_fork) requires it as "
        "Authorization: Bearer, Basic with it as the password (jambonz wsAuth), or ?token=.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL carriers use to reach this server (e.g. wss://calls.example.com); "
        "needed for signature checks behind a proxy.",
    )

    # Media
    max_message_bytes: int = Field(65536, description="Largest WebSocket message accepted from a carrier.")
    max_bad_messages: int = Field(
        100, description="Malformed messages tolerated per stream before it is closed with 1007."
    )
    max_streams_per_source: int = Field(
        50, ge=0,
        description="Media streams one peer address may hold open at once, WebSocket carriers and AudioSocket "
        "together (above: WebSocket close 1013, AudioHook disconnect, AudioSocket error frame); 0 = no limit. "
        "Behind a proxy every carrier has the proxy's address: set 0 or size it for all of them.",
    )
    max_calls: int = Field(
        0, ge=0, description="Media streams the server holds open at once, all sources together (refused like "
        "max_streams_per_source above it); 0 = no limit. WebRTC has its own webrtc_max_calls.",
    )
    media_idle_timeout_s: float = Field(
        30.0, ge=0,
        description="Seconds a WebSocket media stream may send nothing before its call is ended (idle_timeout, "
        "close 1008, recording kept); 0 = no limit.",
    )
    media_start_timeout_s: float = Field(
        10.0, gt=0,
        description="Seconds a WebSocket media stream has from connecting to starting its call (its start / "
        "connected / open / metadata message); then it is closed with 1008.",
    )
    http_max_body_bytes: int = Field(
        1_048_576, ge=0,
        description="Largest HTTP request body (REST API, WebRTC offers); above it 413 before it is read whole. "
        "0 = no limit. Carrier WebSocket messages have max_message_bytes.",
    )
    http_header_timeout_s: float = Field(
        10.0, ge=0,
        description="Seconds a new connection (or the next request on a kept-alive one) has to send its whole "
        "request headers, WebSocket upgrades included; then it is closed (slow loris). 0 = no limit.",
    )
    http_keep_alive_timeout_s: int = Field(
        5, ge=1, description="Seconds an idle keep-alive HTTP connection is kept between requests (uvicorn)."
    )
    http_limit_concurrency: int = Field(
        0, ge=0,
        description="Most HTTP connections and WebSockets (media streams included) at once; above it uvicorn "
        "answers 503. 0 = no limit.",
    )
    http_graceful_shutdown_s: float = Field(
        0, ge=0,
        description="At shutdown, seconds to wait for open requests and streams to finish before they are "
        "cancelled; 0 = wait for them.",
    )

    # Asterisk AudioSocket (raw TCP; Asterisk connects)
    audiosocket_port: int = Field(0, ge=0, le=65535, description="TCP port for Asterisk AudioSocket; 0 = off.")
    audiosocket_host: str = Field("127.0.0.1", description="Interface the AudioSocket port listens on.")
    audiosocket_allow: str = Field(
        "127.0.0.0/8,::1",
        description="Comma-separated peer addresses or networks allowed to connect to the AudioSocket port "
        "(AudioSocket has no credentials); * = any.",
    )
    audiosocket_idle_timeout_s: float = Field(
        30.0,
        ge=0,
        description="Seconds an AudioSocket peer may send nothing after its UUID frame before the call is ended "
        "(idle_timeout) and the socket closed; 0 = no limit.",
    )

    # WebRTC softphones (POST /v1/webrtc/offer)
    webrtc_token: str | None = Field(
        None,
        description="Bearer token softphones present on POST /v1/webrtc/offer; unset = api_token is required "
        "instead (open only while both are unset).",
    )
    webrtc_max_calls: int = Field(20, ge=1, description="Most WebRTC peer connections open at once (503 above).")
    webrtc_max_offer_bytes: int = Field(65536, ge=1024, description="Largest offer request body (413 above).")
    webrtc_stun_urls: str = Field(
        "", description="Comma-separated STUN URLs for the server's ICE candidates (default: host candidates only)."
    )

    # ASR
    model_cache_dir: Path | None = Field(
        None, description="Where split model weights are assembled once; default ~/.cache/stream_server."
    )
    asr_model: str = Field(
        "base", description="base (multilingual, offline), tiny.en (offline), or any faster-whisper name/path."
    )
    asr_threads: int = Field(2, description="CPU threads for the Whisper model, shared by its workers.")
    asr_workers: int = Field(
        2, ge=1, description="Utterance batches transcribed at once (each worker gets asr_threads / asr_workers)."
    )
    asr_compute_type: str = Field("int8", description="CTranslate2 compute type.")
    asr_beam_size: int = Field(5, description="Beam size for final transcripts.")
    asr_pipeline: Literal["fast", "baseline"] = Field(
        "fast",
        description="fast: trimmed windows, batches, partials. baseline: WhisperModel.transcribe() per "
        "utterance, one at a time (the benchmark's yardstick).",
    )
    asr_max_batch: int = Field(4, ge=1, description="Most utterances decoded together in one model call.")
    asr_agent_max_batch: int = Field(
        2, ge=1, description="Most agent utterances per model call (a caller line may have to wait for it)."
    )
    asr_agent_draft: bool = Field(
        True, description="Agent-track transcripts use the cheaper draft decode (5 s window, greedy)."
    )
    asr_min_window_s: float = Field(
        10.0, ge=1.0, le=30.0, description="Shortest encoder window (30 = Whisper's fixed window)."
    )
    languages: str = Field("ja,en", description="Languages auto-detection may choose from.")
    language: str | None = Field(None, description="Force one language for every call (else metadata or auto).")
    partial_interval_s: float = Field(1.0, description="Audio between interim transcripts while a caller speaks.")

    # VAD
    vad_aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode 0-3.")
    endpoint_ms: int = Field(600, description="Silence that ends an utterance.")
    short_endpoint_ms: int = Field(
        900, description="Silence that ends an utterance shorter than 2 s (short phrases wait for their continuation)."
    )
    max_utterance_s: float = Field(15.0, description="Longest utterance before a forced cut.")

    # Classifier and alerts
    text_model: Path | None = Field(None, description="ONNX text model; default models/text_abuse_v2.onnx.")
    voice_model: Path | None = Field(None, description="ONNX shouting model; default models/voice_shouting_v1.onnx.")
    voice_alerts: bool = Field(True, description="Score raised voice (shouting) on the caller track.")
    voice_window_s: float = Field(
        1.5, ge=0.5, le=5.0, description="Sliding window the voice model scores while a caller is still speaking."
    )
    voice_window_interval_s: float = Field(
        0.5, ge=0.1, description="Audio between two sliding-window voice scores of one utterance."
    )
    alert_threshold: float | None = Field(
        None, description="Override every category's threshold (default: the model's own per-category thresholds)."
    )
    alert_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description='Per-category thresholds over the models\' own, JSON: {"insult": 0.7, "shouting": 0.8}.',
    )
    alert_severities: dict[str, Literal["low", "medium", "high", "critical"]] = Field(
        default_factory=dict,
        description='Per-category base severity, JSON: {"profanity": "medium"} (defaults in docs/models.md).',
    )
    alert_cooldown_s: float = Field(30.0, description="Audio seconds one category stays quiet after an alert.")
    prolonged_call_minutes: float = Field(30.0, description="Alert when a call runs longer (0 = off).")
    repeat_calls: int = Field(3, description="Alert when a number calls this often within the window (0 = off).")
    repeat_window_hours: float = Field(24.0, description="Window for repeat_calls.")

    # Retention (docs/operations.md, "Retention and deletion"). 0 = kept forever: evidence is
    # never deleted unless someone decided how long to keep it.
    retention_audio_days: int = Field(
        0, ge=0, description="Days a call's recordings are kept after it ended; 0 = forever."
    )
    retention_transcript_days: int = Field(
        0, ge=0, description="Days a call's transcript (segments) is kept after it ended; 0 = forever."
    )
    retention_alert_days: int = Field(
        0, ge=0, description="Days a call's alerts and supervisor actions are kept after it ended; 0 = forever."
    )
    retention_interval_s: float = Field(
        3600.0, ge=0,
        description="How often the purge job runs (roles all and gateway); 0 = never in the background "
        "(POST /v1/retention/purge or `stream-server purge` still do).",
    )

    # Alert webhooks (Slack, Teams, signed JSON); docs/operations.md, "Webhooks"
    webhooks: WebhookTargets = Field(
        default_factory=list,
        description='Alert notification targets, JSON list: [{"name": "ops", "url": "https://hooks.slack.com/...", '
        '"format": "slack|teams|json", "secret": "<json: HMAC key>", "min_severity": "medium", "categories": []}].',
    )
    webhook_attempts: int = Field(6, ge=1, le=20, description="Tries per webhook delivery before it is failed.")
    webhook_backoff_s: float = Field(
        1.0, gt=0, le=60, description="Wait before the first webhook retry; doubles each time, at most 60 s."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=120, description="Limit on one webhook request.")
    console_url: str | None = Field(
        None, description="Public base URL of the console; webhook messages link <console_url>/calls/<call_id>."
    )

    @field_validator("console_url")
    @classmethod
    def _console_is_http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"console_url must start with http:// or https://, not {value!r}")
        return value

    # Supervisor console (/, /calls, /reports)
    timezone: str = Field("Asia/Tokyo", description="IANA time zone the console shows times and report days in.")
    ui_language: Literal["ja", "en"] = Field("ja", description="The console's language until a user switches it.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Tokyo or UTC)") from exc
        return value

    @field_validator("alert_thresholds", "alert_severities")
    @classmethod
    def _known_categories(cls, value: dict) -> dict:
        known = {str(c) for c in AbuseCategory}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown alert categories {unknown}; known: {sorted(known)}")
        return value

    @field_validator("alert_thresholds")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {c: t for c, t in value.items() if not 0.0 <= t <= 1.0}
        if bad:
            raise ValueError(f"thresholds are probabilities in [0, 1]: {bad}")
        return value

    @model_validator(mode="after")
    def _scale_out_needs_redis(self) -> Settings:
        if self.role != "all" and not self.bus.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"role {self.role} needs STREAM_SERVER_BUS=redis://...: nodes meet on Redis")
        return self

    @property
    def resolved_node_name(self) -> str | None:
        """None in role all: one process owns every call in its database."""
        if self.node_name or self.role == "all":
            return self.node_name
        return f"{socket.gethostname()}:{self.port}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'stream_server.db'}"

    @property
    def resolved_model_cache_dir(self) -> Path:
        from .asr.models import default_cache_dir

        return self.model_cache_dir or default_cache_dir()

    @property
    def language_list(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.languages.split(",") if x.strip())
