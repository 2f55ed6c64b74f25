"""Atheris target: Vonage Voice API WebSocket frames (stream_server/media/vonage.py).

`python fuzz/fuzz_vonage.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input form.
The first message doubles as the Authorization header and ?token=, the last two bytes as the
close code the socket ends with.
"""

from harness import check_events, feed_all, fuzz_main, instrumented, messages

with instrumented():
    from stream_server.media import vonage


def TestOneInput(data: bytes) -> None:
    frames = messages(data)
    credential = frames[0] if isinstance(frames[0], str) else frames[0].decode("latin-1")
    vonage.token_matches("stream-token", credential, credential)
    stream = vonage.VonageMediaStream()
    check_events(feed_all(stream.feed, frames), rates=(8000, 24000))
    stream.on_close(int.from_bytes(data[-2:], "big") if len(data) >= 2 else None)


if __name__ == "__main__":
    fuzz_main(TestOneInput)
