"""Offline analysis of a recording through the same CallSession the live path uses."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from .app import build_services, close_services
from .config import Settings
from .media.audio_files import AudioFileError, read_channels
from .media.events import Audio, CallEnded, CallStarted
from .pipeline.session import CallSession

CHUNK_S = 0.02


async def analyze_file(path: Path, settings: Settings, agent_path: Path | None = None) -> list[dict]:
    """Every bus event the call produced (transcripts, alerts), in order."""
    channels, rate = read_channels(path)
    if agent_path is not None:
        agent_channels, agent_rate = read_channels(agent_path)
        if agent_rate != rate:
            raise AudioFileError("caller and agent files must have the same sample rate")
        channels = [channels[0], agent_channels[0]]
    tracks = ("caller", "agent")[: min(2, len(channels))]
    # An offline file is nobody's live call: keep its events off a shared (Redis) supervisor feed.
    services = await build_services(settings.model_copy(update={"bus": "memory"}))
    # Offline there is no one waiting for interim hypotheses.
    services.options = dataclasses.replace(services.options, partial_tracks=())
    events: list[dict] = []
    subscription = services.bus.subscribe()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    try:
        session = CallSession(services, CallStarted("file", tracks, {"file": path.name}, sample_rate=rate))
        await session.start()
        step = int(rate * CHUNK_S) * 2
        for offset in range(0, max(len(c) for c in channels), step):
            for track, pcm in zip(tracks, channels):
                if offset < len(pcm):
                    session.push_audio(Audio(track, pcm[offset : offset + step], rate, offset / 2 / rate))
            if offset % (step * 50) == 0:
                await asyncio.sleep(0)  # let queued transcription start
        await session.end(CallEnded("completed"))
        while not subscription.queue.empty():  # let the collector take the last events
            await asyncio.sleep(0)
    finally:
        collector.cancel()
        subscription.close()
        await close_services(services)
    return [e for e in events if e["type"] in ("transcript.final", "alert")]
