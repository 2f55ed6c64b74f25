"""Atheris target: Telnyx media streaming frames (stream_server/media/telnyx.py).

`python fuzz/fuzz_telnyx.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input form.
Every message also goes through the `connected`-frame token read the endpoint does first.
"""

from harness import check, check_events, feed_all, fuzz_main, instrumented, messages

with instrumented():
    from stream_server.media import telnyx

TOKEN = "stream-auth-token"


def TestOneInput(data: bytes) -> None:
    frames = messages(data)
    for frame in frames:
        token = telnyx.connected_token(frame)
        check(token is None or isinstance(token, str), f"connected_token gave {type(token).__name__}")
        telnyx.token_matches(TOKEN, token)
    check_events(feed_all(telnyx.TelnyxMediaStream().feed, frames))


if __name__ == "__main__":
    fuzz_main(TestOneInput)
