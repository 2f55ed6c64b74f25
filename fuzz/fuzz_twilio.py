"""Atheris target: Twilio Media Streams frames (stream_server/media/twilio.py).

`python fuzz/fuzz_twilio.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input form.
The first message doubles as the X-Twilio-Signature header, the way a hostile upgrade sends one.
"""

from harness import check, check_events, feed_all, fuzz_main, instrumented, messages

with instrumented():
    from stream_server.media import twilio


def TestOneInput(data: bytes) -> None:
    frames = messages(data)
    signature = frames[0] if isinstance(frames[0], str) else frames[0].decode("latin-1")
    check(twilio.verify_signature("auth-token", "wss://calls.example.com/v1/media/twilio", signature) is False,
          "a made-up signature was accepted")
    check_events(feed_all(twilio.TwilioMediaStream().feed, frames), rates=(8000, 8000))


if __name__ == "__main__":
    fuzz_main(TestOneInput)
