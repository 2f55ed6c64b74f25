"""Recordings are playable at every moment, not only after hang-up."""

import wave

import numpy as np
import pytest

from stream_server.store.recordings import RecordingStore


def test_file_is_a_valid_wav_after_every_write_without_close(tmp_path):
    store = RecordingStore(tmp_path)
    recorder = store.open_track("c1", "caller", 8000)
    for i in range(1, 4):
        recorder.write(b"\x01\x00" * 160)
        with wave.open(str(recorder.path), "rb") as wav:  # read while still open for writing
            assert wav.getnframes() == 160 * i
            assert wav.getframerate() == 8000
    recorder.close()


def test_render_aligns_tracks_as_channels(tmp_path):
    store = RecordingStore(tmp_path)
    caller, agent = store.open_track("c1", "caller", 8000), store.open_track("c1", "agent", 8000)
    caller.write(np.full(800, 1000, "<i2").tobytes())
    agent.write(np.full(400, -1000, "<i2").tobytes())
    caller.close(), agent.close()
    assert store.tracks("c1") == ["caller", "agent"]
    import io

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
