"""Frames out of order, twice, or never: the track stays gap-free and in order."""

from stream_server.pipeline.ordering import FrameOrderer

RATE = 8000
N = 160  # samples per 20 ms frame


def frame(i: int) -> bytes:
    return bytes([i % 256, 0]) * N


def play(orderer: FrameOrderer, order: list[int]) -> bytes:
    out = b""
    for i in order:
        out += b"".join(orderer.push(i * 0.02, frame(i)))
    return out + b"".join(orderer.flush())


def test_in_order_frames_pass_straight_through():
    orderer = FrameOrderer(RATE)
    assert orderer.push(0.0, frame(0)) == [frame(0)]
    assert orderer.push(0.02, frame(1)) == [frame(1)]


def test_swapped_frames_are_reordered():
    assert play(FrameOrderer(RATE), [0, 2, 1, 3]) == b"".join(frame(i) for i in range(4))


def test_duplicates_are_dropped_and_counted():
    orderer = FrameOrderer(RATE)
    assert play(orderer, [0, 1, 1, 2, 0]) == b"".join(frame(i) for i in range(3))
    assert orderer.stats.stale == 2


def test_a_lost_frame_becomes_silence_once_the_buffer_is_full():
    orderer = FrameOrderer(RATE, depth=3)
    out = play(orderer, [0, 2, 3, 4, 5, 6])
    assert len(out) == 7 * N * 2
    assert out[N * 2 : 2 * N * 2] == b"\x00" * (N * 2)
    assert orderer.stats.gap_samples == N


def test_a_frame_arriving_after_its_hole_was_filled_is_dropped():
    orderer = FrameOrderer(RATE, depth=2)
    out = play(orderer, [0, 2, 3, 4, 1])
    assert len(out) == 5 * N * 2
    assert orderer.stats.stale == 1


def test_a_huge_timestamp_jump_does_not_write_hours_of_silence():
    orderer = FrameOrderer(RATE, depth=0)
    out = b"".join(orderer.push(0.0, frame(0)) + orderer.push(3600.0, frame(1)))
    assert len(out) == 2 * N * 2
    assert orderer.stats.resyncs == 1
