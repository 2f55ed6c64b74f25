"""Atheris target: jambonz `listen` / mod_audio_fork frames (stream_server/media/l16_stream.py).

`python fuzz/fuzz_l16_stream.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input
form. The first message doubles as the Authorization header and the offered subprotocols, the last
two bytes as the close code.
"""

from harness import check, check_events, feed_all, fuzz_main, instrumented, messages

with instrumented():
    from stream_server.media import l16_stream


def TestOneInput(data: bytes) -> None:
    frames = messages(data)
    header = frames[0] if isinstance(frames[0], str) else frames[0].decode("latin-1")
    l16_stream.token_matches("stream-token", header, header)
    offered = header.split(",")
    check(l16_stream.offered_subprotocol(offered) in (*offered, None), "accepted a subprotocol nobody offered")
    stream = l16_stream.L16MediaStream()
    check_events(feed_all(stream.feed, frames), rates=(8000, 64000))
    stream.on_close(int.from_bytes(data[-2:], "big") if len(data) >= 2 else None)


if __name__ == "__main__":
    fuzz_main(TestOneInput)
