"""CallSession: everything that happens to one call between CallStarted and CallEnded.

Per track: frames are put in order, recorded to disk at once, resampled to 16 kHz,
measured for loudness and cut into utterances. Each utterance goes to the shared ASR
scheduler; its transcript is scored by the text classifier, its audio by the voice
(shouting) model against the caller's own baseline, both are stored and published, and
the alert policy decides whether a supervisor is paged. While a caller is still speaking,
the voice model also scores a sliding window, so shouting can alert mid-utterance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..alerts.alert import AbuseCategory, Alert, new_id, utc_now
from ..alerts.policy import AlertPolicy, AlertPolicyOptions
from ..alerts.rules import CallRuleOptions, prolonged_call_alert, repeat_caller_alert
from ..asr.scheduler import AsrScheduler
from ..bus import EventBus
from ..media.codecs import PIPELINE_RATE, StreamResampler, pcm16_to_float
from ..media.events import Audio, CallEnded, CallStarted
from ..media.vad import SpeechSegmenter, Utterance, VadOptions
from ..metrics import ServerMetrics
from ..store.recordings import RecordingStore, TrackRecorder
from ..store.repository import CALLER_KEYS, CallStore
from ..store.writer import PASSING_ERRORS, StoreWriter
from .durability import seal_recordings
from .loudness import LoudnessMeter
from .ordering import FrameOrderer

if TYPE_CHECKING:
    from ..asr.queue import RemoteAsr
    from ..classifiers.voice import ShoutingDetector

log = logging.getLogger(__name__)


class TextScorer(Protocol):
    def score(self, text: str, lang: str | None = None) -> dict[str, float]: ...


@dataclass(frozen=True)
class SessionOptions:
    vad: VadOptions = field(default_factory=VadOptions)
    policy: AlertPolicyOptions = field(default_factory=AlertPolicyOptions)
    rules: CallRuleOptions = field(default_factory=CallRuleOptions)
    partial_interval_s: float = 1.0  # audio between interim transcripts of one utterance
    partial_tracks: tuple[str, ...] = ("caller",)
    voice_window_s: float = 1.5  # sliding window the voice model scores mid-utterance
    voice_window_interval_s: float = 0.5
    language: str | None = None  # forced for every call; None = metadata or auto-detect
    language_confidence: float = 0.6  # detection this sure fixes the call's language
    end_timeout_s: float = 120.0  # hang-up waits this long for queued ASR; later results still land


@dataclass
class CallServices:
    """What a session needs from the process; built once in app.py."""

    store: CallStore
    recordings: RecordingStore
    bus: EventBus
    asr: AsrScheduler | RemoteAsr  # the model here, or the shared queue to the asr role's workers
    scorer: TextScorer
    writer: StoreWriter  # the store's writes from calls: in order, off the event loop, held through a full disk
    options: SessionOptions = field(default_factory=SessionOptions)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    voice: ShoutingDetector | None = None  # None: no shouting scores


def language_from_metadata(metadata: dict[str, str]) -> str | None:
    """`language` custom parameter: "ja", "ja-JP", "en_US" → "ja" / "en"."""
    value = (metadata.get("language") or metadata.get("lang") or "").strip().lower()
    code = value.replace("_", "-").split("-")[0]
    return code if code.isascii() and code.isalpha() and 2 <= len(code) <= 3 else None


class _Track:
    """One party's audio through ordering, recording, resampling, loudness and VAD."""

    def __init__(
        self, name: str, recorder: TrackRecorder, sample_rate: int, vad: VadOptions, voice: ShoutingDetector | None
    ) -> None:
        self.name = name
        self.recorder = recorder
        self.orderer = FrameOrderer(sample_rate)
        self.resampler = StreamResampler(sample_rate, PIPELINE_RATE)
        self.segmenter = SpeechSegmenter(vad)
        self.loudness = LoudnessMeter()
        self.utterances = 0
        self.partial_pending = False
        self.partial_audio_end = 0.0
        self.voice_baseline = voice.new_baseline() if voice is not None else None
        self.voice_window_end = 0.0
        self.voice_pending = False

    @property
    def audio_time(self) -> float:
        return self.recorder.samples_received / self.recorder.sample_rate

    def spoken_at(self, audio_t: float) -> float:
        """time.monotonic() when audio time `audio_t` of this track arrived, assuming media comes
        in real time as carriers send it: the start of the latency metrics' clock."""
        return time.monotonic() - max(0.0, self.audio_time - audio_t)

    def push(self, t: float, pcm16: bytes) -> list[Utterance]:
        return self._process(self.orderer.push(t, pcm16), last=False)

    def finish(self) -> list[Utterance]:
        done = self._process(self.orderer.flush(), last=True)
        return done + self.segmenter.flush()

    def _process(self, chunks: list[bytes], last: bool) -> list[Utterance]:
        done: list[Utterance] = []
        for chunk in chunks:
            self.recorder.write(chunk)  # recording first: nothing received is ever lost
        pcm = self.resampler.process(b"".join(chunks), last=last)
        if pcm:
            self.loudness.update(pcm)
            done += self.segmenter.push(pcm)
        return done


class CallSession:
    def __init__(self, services: CallServices, started: CallStarted, call_id: str | None = None) -> None:
        self.s = services
        self.options = services.options
        self.call_id = call_id or new_id()
        self.started = started
        self.metadata = dict(started.metadata)
        self.language = self.options.language or language_from_metadata(self.metadata)
        self.language_fixed = self.language is not None
        self.policy = AlertPolicy(self.call_id, self.metadata, self.options.policy)
        self.tracks: dict[str, _Track] = {}
        self.ended = False
        self.bad_messages = 0
        self._tasks: set[asyncio.Task] = set()
        self._prolonged_alerted = False
        self.metrics = services.metrics
        self._media = services.metrics.media(started.carrier)

    def summary(self) -> dict[str, Any]:
        """What a supervisor joining mid-call needs to show this call."""
        return {
            "call_id": self.call_id,
            "carrier": self.started.carrier,
            "tracks": list(self.tracks),
            "metadata": self.metadata,
            "language": self.language,
            "audio_time": round(max((t.audio_time for t in self.tracks.values()), default=0.0), 3),
            "level_dbfs": {name: round(t.loudness.level_dbfs, 1) for name, t in self.tracks.items()},
        }

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        await self.s.writer.write(
            self.s.store.create_call,
            self.call_id,
            self.started.carrier,
            list(self.started.tracks),
            self.metadata,
            self.started.carrier_call_id,
            self.started.stream_id,
            self.language,
        )
        self.metrics.call_started(self.started.carrier)
        for name in self.started.tracks:
            self._track(name)
        await self._publish(
            {
                "type": "call.started",
                "call_id": self.call_id,
                "carrier": self.started.carrier,
                "carrier_call_id": self.started.carrier_call_id,
                "stream_id": self.started.stream_id,
                "tracks": list(self.started.tracks),
                "metadata": self.metadata,
                "started_at": utc_now().isoformat(),
            }
        )
        number = next((self.metadata[k] for k in CALLER_KEYS if self.metadata.get(k)), None)
        if number:
            rules = self.options.rules
            try:
                recent = await self.s.writer.read(self.s.store.count_recent_calls, number, rules.repeat_window_hours)
            except PASSING_ERRORS as exc:  # the database is down or full: the call goes on without this rule
                log.warning("call %s: repeat-caller check skipped: %s", self.call_id, exc)
                return
            severity = self.options.policy.severity(AbuseCategory.REPEAT_CALLER)
            alert = repeat_caller_alert(self.call_id, self.metadata, recent, rules, severity)
            if alert:
                await self._raise(alert)

    def push_audio(self, audio: Audio) -> None:
        """Called for every media frame; never blocks on ASR or the database."""
        if self.ended:
            return
        self._media.received(len(audio.pcm16))
        track = self._track(audio.track, audio.sample_rate)
        for utterance in track.push(audio.t, audio.pcm16):
            self._spawn_final(track, utterance)
        self._maybe_partial(track)
        self._maybe_voice_window(track)
        if track.name == "caller" and not self._prolonged_alerted:
            severity = self.options.policy.severity(AbuseCategory.PROLONGED_CALL)
            alert = prolonged_call_alert(self.call_id, self.metadata, track.audio_time, self.options.rules, severity)
            if alert:
                self._prolonged_alerted = True
                self._spawn(self._raise(alert))

    async def end(self, event: CallEnded) -> None:
        """Finish: close recordings, drain transcription, record how the call ended."""
        if self.ended:
            return
        self.ended = True
        complete = True
        for track in self.tracks.values():
            for utterance in track.finish():
                self._spawn_final(track, utterance)
            complete &= self.s.recordings.close_track(track.recorder)
        if complete:  # else the disk still refuses some audio: sealed once it is written (durability.py)
            await seal_recordings(self.s, self.call_id)
        else:
            log.error("call %s ended with %.1f s of audio not yet on disk; it is written when space returns",
                      self.call_id, sum(t.recorder.held_seconds for t in self.tracks.values()))
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.options.end_timeout_s)
            if pending:  # deferred agent work under load: stored when done, never dropped
                log.info("call %s ended with %d utterances still queued for ASR", self.call_id, len(pending))
        duration = max((t.audio_time for t in self.tracks.values()), default=0.0)
        stats: dict[str, Any] = {"bad_messages": self.bad_messages}
        for name, track in self.tracks.items():
            stats[name] = {
                "stale_frames": track.orderer.stats.stale,
                "gap_seconds": track.orderer.stats.gap_samples / track.orderer.sample_rate,
                "resyncs": track.orderer.stats.resyncs,
                "utterances": track.utterances,
            }
        await self.s.writer.write(self.s.store.end_call, self.call_id, event.reason, duration, event.abnormal, stats,
                                  list(self.tracks))
        self.metrics.call_ended(self.started.carrier, event.reason, self.bad_messages)
        await self._publish(
            {
                "type": "call.ended",
                "call_id": self.call_id,
                "reason": event.reason,
                "status": "interrupted" if event.abnormal else "ended",
                "duration": round(duration, 3),
                "ended_at": utc_now().isoformat(),
            }
        )

    # -- per utterance --------------------------------------------------------------

    def _track(self, name: str, sample_rate: int | None = None) -> _Track:
        track = self.tracks.get(name)
        if track is None:
            rate = sample_rate or self.started.sample_rate
            recorder = self.s.recordings.open_track(self.call_id, name, rate)  # never raises for a full disk
            voice = self.s.voice if name in self.options.policy.alert_tracks else None
            track = self.tracks[name] = _Track(name, recorder, rate, self.options.vad, voice)
        return track

    def _maybe_partial(self, track: _Track) -> None:
        if track.name not in self.options.partial_tracks or track.partial_pending or not self.s.asr.spare_capacity:
            return
        span = track.segmenter.current_span()  # checked first: current() copies the audio
        if span is None or span[1] - max(span[0], track.partial_audio_end) < self.options.partial_interval_s:
            return
        current = track.segmenter.current()
        track.partial_pending = True
        track.partial_audio_end = current.end
        self._spawn(self._partial(track, current, track.utterances, track.spoken_at(current.end)))

    async def _partial(self, track: _Track, utterance: Utterance, index: int, spoken_at: float) -> None:
        try:
            result = await self.s.asr.transcribe(
                pcm16_to_float(utterance.pcm16), self.language, track=track.name, partial=True, key=(track.name, index)
            )
        finally:
            track.partial_pending = False
        if result is None or not result.text:
            return
        scores = self.s.scorer.score(result.text, result.language)
        await self._publish(self._transcript_event("transcript.partial", track.name, utterance, result, scores))
        for alert in self.policy.evaluate(scores, result.text, utterance.start, utterance.end, track.name,
                                          partial=True):
            await self._raise(alert, spoken_at)

    def _spawn_final(self, track: _Track, utterance: Utterance) -> None:
        # The index is taken now, not when the task runs, so a partial of the next
        # utterance can never share this utterance's key.
        index = track.utterances
        track.utterances += 1
        self._spawn(self._final(track, utterance, index, track.spoken_at(utterance.end)))

    def _maybe_voice_window(self, track: _Track) -> None:
        """Score the last voice_window_s of an utterance still being spoken, every
        voice_window_interval_s of its audio (one at a time per track)."""
        if track.voice_baseline is None or track.voice_pending:
            return
        span = track.segmenter.current_span()
        o = self.options
        if span is None or span[1] - span[0] < o.voice_window_s or span[1] - track.voice_window_end < o.voice_window_interval_s:
            return
        current = track.segmenter.current()
        window = current.pcm16[-int(o.voice_window_s * PIPELINE_RATE) * 2 :]
        track.voice_pending = True
        track.voice_window_end = current.end
        self._spawn(self._voice_window(track, window, current.end - o.voice_window_s, current.end))

    async def _voice_window(self, track: _Track, pcm16: bytes, start: float, end: float) -> None:
        try:
            voice = await asyncio.to_thread(self.s.voice.score_window, pcm16, track.voice_baseline)
        finally:
            track.voice_pending = False
        own = voice.features.get("own_baseline", 0.0) >= 1.0
        for alert in self.policy.evaluate_voice(voice.shouting, "", start, end, track.name, window=True, own_baseline=own):
            await self._raise(alert, track.spoken_at(end))

    async def _final(self, track: _Track, utterance: Utterance, index: int, spoken_at: float) -> None:
        level, delta = track.loudness.observe_utterance(utterance.pcm16)
        voice = None
        if track.voice_baseline is not None:  # scored in order of speech: the baseline is the past
            voice = await asyncio.to_thread(self.s.voice.score_segment, utterance.pcm16, track.voice_baseline)
        result = await self.s.asr.transcribe(
            pcm16_to_float(utterance.pcm16), self.language, track=track.name, partial=False, key=(track.name, index)
        )
        self.metrics.final_transcript(track.name, spoken_at)
        if result is None or not result.text:
            if voice is not None:  # shouting that Whisper made nothing of is still shouting
                for alert in self.policy.evaluate_voice(voice.shouting, "", utterance.start, utterance.end, track.name):
                    await self._raise(alert, spoken_at)
            return
        await self._learn_language(result)
        scores = self.s.scorer.score(result.text, result.language)
        if voice is not None:
            scores = {**scores, "shouting": voice.shouting}
        abusive = self.options.policy.is_abusive(scores)
        segment_id = await self.s.writer.write(  # None while the database refuses writes
            self.s.store.add_segment,
            self.call_id,
            track.name,
            utterance.start,
            utterance.end,
            result.text,
            result.language,
            scores,
            abusive,
            level,
            delta,
        )
        event = self._transcript_event("transcript.final", track.name, utterance, result, scores)
        event.update(segment_id=segment_id, abusive=abusive, loudness_dbfs=round(level, 1))
        event["loudness_delta_db"] = None if delta is None else round(delta, 1)
        await self._publish(event)
        for alert in self.policy.evaluate(scores, result.text, utterance.start, utterance.end, track.name):
            await self._raise(alert, spoken_at)

    async def _learn_language(self, result: Any) -> None:
        """Auto-detection on a short phrase wanders; the first confident answer sticks."""
        if self.language_fixed or result.language_probability < self.options.language_confidence:
            return
        self.language, self.language_fixed = result.language, True
        await self.s.writer.write(self.s.store.set_language, self.call_id, result.language)

    async def _raise(self, alert: Alert, spoken_at: float | None = None) -> None:
        """`spoken_at`: when the utterance behind the alert ended (None for call rules). Stored
        first (a supervisor may act on it at once), but published whatever the store says."""
        try:
            await self.s.writer.write(self.s.store.add_alert, alert)
        except Exception:
            log.exception("call %s: alert %s not stored", self.call_id, alert.id)
        await self._publish({"type": "alert", **alert.to_event()})
        self.metrics.alert_raised(alert, spoken_at)

    async def _publish(self, event: dict[str, Any]) -> None:
        await self.s.bus.publish(event)
        self.metrics.event_published(event["type"])

    def _transcript_event(
        self, kind: str, track: str, utterance: Utterance, result: Any, scores: dict[str, float]
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "call_id": self.call_id,
            "track": track,
            "start": round(utterance.start, 3),
            "end": round(utterance.end, 3),
            "text": result.text,
            "language": result.language,
            "scores": {c: round(s, 4) for c, s in scores.items()},
        }

    # -- plumbing -------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: utterance processing failed", self.call_id, exc_info=task.exception())
