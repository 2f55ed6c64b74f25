"""Atheris target: Asterisk AudioSocket byte streams (stream_server/media/audiosocket.py).

`python fuzz/fuzz_audiosocket.py [corpus dirs] -atheris_runs=N`. An input is one TCP stream: its
first byte sets the size of the reads it arrives in (1-256 bytes), the rest is what the peer sent.
The parser answers everything itself (counted bad frames, or `error` and no more parsing), so it
may raise nothing; what it keeps between reads stays under one whole frame.
"""

from harness import check, check_events, feed_all, fuzz_main, instrumented

with instrumented():
    from stream_server.media import audiosocket
    from stream_server.media.events import Audio, CallEnded, CallStarted

MAX_HELD = audiosocket.HEADER.size + audiosocket.MAX_PAYLOAD_BYTES


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    read, stream = data[0] + 1, data[1:]
    parser = audiosocket.AudioSocketStream(max_bad_frames=20)
    events = []
    for at in range(0, len(stream), read):
        over = parser.ended or parser.error is not None
        got = feed_all(parser.feed, [stream[at:at + read]], accepted=())
        check(not (over and got), "events after a hangup or a lost framing")
        check(len(parser._buffer) < MAX_HELD, f"{len(parser._buffer)} bytes held between reads")
        events += got
    end = parser.finish()
    check(isinstance(end, CallEnded), f"finish gave {end!r}")
    started = [e for e in events if isinstance(e, CallStarted)]
    check(len(started) <= 1, f"{len(started)} CallStarted events")
    first_audio = next((i for i, e in enumerate(events) if isinstance(e, Audio)), None)
    check(first_audio is None or (started and events.index(started[0]) < first_audio), "audio before CallStarted")
    check_events(events, rates=(8000, 192000))


if __name__ == "__main__":
    fuzz_main(TestOneInput)
