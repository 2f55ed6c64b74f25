"""Atheris target: the frame rules every JSON carrier shares (stream_server/media/frames.py,
metadata.py): one JSON object per text frame, base64 payloads, held early media, bounded metadata.

`python fuzz/fuzz_frames.py [corpus dirs] -atheris_runs=N`; see fuzz/harness.py for the input form.
parse_json_object and decode_payload promise MalformedMessage and nothing else.
"""

import logging

from harness import Finding, check, check_text, fuzz_main, instrumented, messages

with instrumented():
    from stream_server.media import frames as shared
    from stream_server.media.errors import MalformedMessage
    from stream_server.media.metadata import metadata_from_parameters

log = logging.getLogger("fuzz_frames")
log.disabled = True


def _promised(call, *args):
    """Run one helper whose only documented error is MalformedMessage; None when it raised it."""
    try:
        return call(*args)
    except MalformedMessage:
        return None
    except Exception as exc:
        raise Finding(f"{type(exc).__name__} escaped {call.__name__}: {exc!r}"[:500]) from exc


def TestOneInput(data: bytes) -> None:
    held: shared.HeldMedia = shared.HeldMedia()
    for message in messages(data):
        msg = _promised(shared.parse_json_object, message)
        if msg is None:
            continue
        check(isinstance(msg, dict), "parse_json_object gave a non-object")
        for value in (msg.get("payload"), *(v.get("payload") for v in msg.values() if isinstance(v, dict))):
            audio = _promised(shared.decode_payload, value)
            check(audio is None or (isinstance(audio, bytes) and bool(audio)), "decode_payload gave no audio")
        for parameters in (msg, *(v for v in msg.values() if isinstance(v, dict))):
            metadata = metadata_from_parameters(parameters)
            check(len(metadata) <= 64, f"{len(metadata)} metadata entries")
            for key, value in metadata.items():
                check_text(key, "metadata key", 128)
                check_text(value, "metadata value", 1024)
        held.hold(msg)
    check(len(held._frames) <= shared.MAX_PENDING_MEDIA, "held media is unbounded")
    # Replaying what was held: a frame the handler rejects costs that frame only.
    try:
        held.replay(_decode_held, log, "fuzz: dropping held media")
    except Exception as exc:
        raise Finding(f"{type(exc).__name__} escaped HeldMedia.replay: {exc!r}"[:500]) from exc


def _decode_held(msg: dict) -> list:
    shared.decode_payload(msg.get("payload"))
    return []


if __name__ == "__main__":
    fuzz_main(TestOneInput)
