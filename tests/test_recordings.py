"""Recordings are playable at every moment, survive a refused disk, and are repaired after a crash."""

import io
import os
import subprocess
import sys
import textwrap
import wave

import numpy as np
import pytest

from stream_server.store.recordings import HEADER_BYTES, RecordingStore, TrackRecorder
from stream_server.store.recovery import repair_wav
from stream_server.store.storage_health import StorageHealth


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frames_in(path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


def test_file_is_a_valid_wav_at_every_moment_and_its_header_at_most_a_second_behind(tmp_path):
    clock = Clock()
    recorder = TrackRecorder(tmp_path / "c1" / "caller.wav", 8000, clock=clock)
    assert frames_in(recorder.path) == 0  # valid (empty) before any audio
    for i in range(1, 151):  # 3 s of 20 ms frames, the clock moving with the audio
        recorder.write(np.full(160, i, "<i2").tobytes())
        clock.now = i * 0.02
        on_disk = (recorder.path.stat().st_size - HEADER_BYTES) // 2
        assert on_disk == 160 * i  # every frame is in the file at once
        assert 160 * i - 8000 <= frames_in(recorder.path) <= 160 * i  # the header lags at most 1 s
    recorder.close()
    assert frames_in(recorder.path) == 150 * 160


def test_render_aligns_tracks_as_channels(tmp_path):
    store = RecordingStore(tmp_path)
    caller, agent = store.open_track("c1", "caller", 8000), store.open_track("c1", "agent", 8000)
    caller.write(np.full(800, 1000, "<i2").tobytes())
    agent.write(np.full(400, -1000, "<i2").tobytes())
    store.close_track(caller), store.close_track(agent)
    assert store.tracks("c1") == ["caller", "agent"]
    with wave.open(io.BytesIO(store.render("c1", ["caller", "agent"])), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getnframes() == 800
        frames = np.frombuffer(wav.readframes(800), "<i2").reshape(-1, 2)
    assert (frames[:, 0] == 1000).all()
    assert (frames[:400, 1] == -1000).all() and (frames[400:, 1] == 0).all()


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 100])
def test_path_traversal_is_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        RecordingStore(tmp_path).path(bad, "caller")
    assert RecordingStore(tmp_path).tracks(bad) == []


# -- a disk that refuses writes ---------------------------------------------------------------
# RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), the way a full disk refuses
# them (ENOSPC), without root; the child process raises its own limit to "free space". A real
# full filesystem is exercised end to end in tests/test_durability.py.

REFUSED_DISK = textwrap.dedent("""
    import json, resource, signal, sys
    import numpy as np
    from stream_server.store.recordings import RecordingStore
    from stream_server.store.storage_health import StorageHealth

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write raises EFBIG instead of killing us
    root, limit, hold_s, end_while_full = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
    health = StorageHealth()
    events = []
    health.subscribe(lambda e: events.append(e["state"]))
    store = RecordingStore(__import__("pathlib").Path(root), health, max_held_s=hold_s)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the disk is "full" past `limit` bytes
    recorder = store.open_track("c1", "caller", 8000)
    recorder.retry_s = 0  # try the disk on every frame
    for i in range(500):  # 10 s of frames, each holding its own index
        recorder.write(np.full(160, i, "<i2").tobytes())
    failing = health.failing("recordings")
    held = recorder.held_seconds
    complete_at_end = None
    if end_while_full:
        complete_at_end = store.close_track(recorder)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space returns
    if end_while_full:
        finished = store.retry_held()
    else:
        recorder.write(np.full(160, 500, "<i2").tobytes())
        finished = [] if store.close_track(recorder) is False else ["closed"]
    print(json.dumps({"failing": failing, "held": held, "events": events, "finished": finished,
                      "complete_at_end": complete_at_end, "lost": recorder.samples_lost,
                      "received": recorder.samples_received}))
""")


def _refused_disk(tmp_path, limit: int, hold_s: float, end_while_full: bool) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", REFUSED_DISK, str(tmp_path), str(limit), str(hold_s),
                           "1" if end_while_full else "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _frame_indices(path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert len(samples) % 160 == 0
    frames = samples.reshape(-1, 160)
    assert (frames == frames[:, :1]).all(), "a frame was split or shifted"
    return frames[:, 0]


def test_audio_refused_by_the_disk_is_held_and_written_in_place_when_space_returns(tmp_path):
    # 3 s and a bit of a frame fit (a partial write), the other 7 s are refused, held, then
    # written: nothing lost, nothing shifted.
    result = _refused_disk(tmp_path, HEADER_BYTES + 48_100, hold_s=300, end_while_full=False)
    assert result["failing"] is True and result["held"] == pytest.approx(7.0, abs=0.01)
    assert result["events"] == ["failing", "ok"]  # announced once each way, not per frame
    assert result["lost"] == 0
    assert list(_frame_indices(tmp_path / "c1" / "caller.wav")) == list(range(501))


def test_a_call_that_ends_while_the_disk_is_full_is_finished_when_space_returns(tmp_path):
    result = _refused_disk(tmp_path, HEADER_BYTES + 48_000, hold_s=300, end_while_full=True)
    assert result["complete_at_end"] is False  # the file stays open, its audio held
    assert result["finished"] == ["c1"]  # ready to be sealed
    assert list(_frame_indices(tmp_path / "c1" / "caller.wav")) == list(range(500))


def test_beyond_the_hold_limit_the_oldest_audio_becomes_silence_and_the_rest_keeps_its_time(tmp_path):
    # 1 s fits; 9 s are refused but only 2 s may be held: 7 s of the oldest are dropped.
    result = _refused_disk(tmp_path, HEADER_BYTES + 16_000, hold_s=2, end_while_full=False)
    assert result["lost"] == 7 * 8000 and result["received"] == 501 * 160
    indices = _frame_indices(tmp_path / "c1" / "caller.wav")
    assert len(indices) == 501  # the file is as long as the call: later audio is at its own time
    assert list(indices[:50]) == list(range(50))
    assert (indices[50:400] == 0).all()  # 7 s of silence where the dropped audio was
    assert list(indices[400:]) == list(range(400, 501))


def test_a_disk_full_from_the_first_moment_still_gets_the_whole_file(tmp_path):
    result = _refused_disk(tmp_path, 0, hold_s=300, end_while_full=True)
    assert result["finished"] == ["c1"]
    assert list(_frame_indices(tmp_path / "c1" / "caller.wav")) == list(range(500))


# -- repair after a crash ------------------------------------------------------------------


def test_repair_sets_the_header_to_the_audio_in_the_file(tmp_path):
    clock = Clock()
    recorder = TrackRecorder(tmp_path / "caller.wav", 8000, StorageHealth(), clock=clock)
    clock.now = 1.0
    recorder.write(np.full(8000, 7, "<i2").tobytes())  # header patched: 1 s
    recorder.write(np.full(4000, 7, "<i2").tobytes())  # not yet patched (same second)
    with open(recorder.path, "ab") as file:
        file.write(b"\x01")  # half a sample, as a kill mid-write can leave
    os.close(recorder._fd)  # the process is gone: nothing else is written
    assert frames_in(recorder.path) == 8000
    repaired = repair_wav(recorder.path)
    assert repaired.header_seconds == 1.0 and repaired.seconds == 1.5
    assert frames_in(recorder.path) == 12000 and recorder.path.stat().st_size == HEADER_BYTES + 24000


def test_repair_leaves_a_file_it_did_not_write_alone(tmp_path):
    path = tmp_path / "caller.wav"
    path.write_bytes(b"not a wav at all")
    assert repair_wav(path) is None and path.read_bytes() == b"not a wav at all"
