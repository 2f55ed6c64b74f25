"""Atheris target: Genesys AudioHook sessions (stream_server/media/audiohook.py).

`python fuzz/fuzz_audiohook.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input
form. The first message is the upgrade request's header block ("Name: value" lines), checked as
the endpoint checks it (API key, RFC 9421 signature); the rest is the session. AudioHook answers
every problem in-protocol (`disconnect`), so the parser may raise nothing at all.
"""

import json

from harness import Finding, check, check_events, feed_all, fuzz_main, instrumented, messages

with instrumented("http_message_signatures", "http_sf"):  # check_upgrade parses Signature(-Input) with them
    from starlette.datastructures import Headers

    from stream_server.media import audiohook
    from stream_server.media.events import CallEnded, Reply

API_KEY = "test-audiohook-api-key"
CLIENT_SECRET = "dGVzdC1hdWRpb2hvb2stY2xpZW50LXNlY3JldA=="
URL = "wss://calls.example.com/v1/media/audiohook"


def upgrade_headers(block: str | bytes) -> Headers:
    """"Name: value" lines → the headers as Starlette hands them to the endpoint (latin-1)."""
    text = block if isinstance(block, str) else block.decode("latin-1")
    raw = []
    for line in text.split("\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip():
            raw.append((name.strip().lower().encode("utf-8", "replace"), value.strip().encode("utf-8", "replace")))
    return Headers(raw=raw)


def TestOneInput(data: bytes) -> None:
    frames = messages(data)
    headers = upgrade_headers(frames[0])
    request = audiohook.UpgradeRequest(audiohook.http_url(URL), "/v1/media/audiohook", headers)
    try:
        refusal = audiohook.check_upgrade(request, API_KEY, CLIENT_SECRET, max_age=None)
    except Exception as exc:
        raise Finding(f"check_upgrade raised {type(exc).__name__}: {exc!r}"[:500]) from exc
    check(refusal is None or isinstance(refusal, str), f"check_upgrade gave {refusal!r}")
    session = audiohook.AudioHookSession(headers.get("audiohook-session-id"),
                                         headers.get("audiohook-organization-id", ""), refusal)
    outputs = feed_all(session.feed, frames[1:], accepted=())
    for reply in (o for o in outputs if isinstance(o, Reply)):
        check(isinstance(reply.data, str), "a binary reply")
        reply.data.encode("utf-8")  # the socket sends it as a text frame
        check(isinstance(json.loads(reply.data), dict), "a reply that is not a JSON object")
    ended = [o for o in outputs if isinstance(o, CallEnded)]
    check(len(ended) <= 1, f"{len(ended)} CallEnded events")
    check_events(outputs, rates=(8000, 8000))


if __name__ == "__main__":
    fuzz_main(TestOneInput)
