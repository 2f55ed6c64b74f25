"""Atheris target: WebRTC offer bodies (stream_server/media/webrtc.py, POST /v1/webrtc/offer).

`python fuzz/fuzz_webrtc.py [corpus dirs] -atheris_runs=N`. An input is one request body. The
endpoint answers OfferError with 400; any other exception would be a 500, so it is a finding.
"""

from harness import Finding, check, check_text, fuzz_main, instrumented

with instrumented("aiortc.sdp"):  # check_sdp hands the peer's SDP to aiortc's parser
    from stream_server.media import webrtc


def TestOneInput(data: bytes) -> None:
    try:
        offer = webrtc.parse_offer(data)
    except webrtc.OfferError as exc:
        check_text(str(exc), "the 400 message")
        return
    except Exception as exc:
        raise Finding(f"{type(exc).__name__} escaped parse_offer: {exc!r}"[:500]) from exc
    check(offer.track in ("caller", "agent"), f"track {offer.track!r}")
    check_text(offer.carrier_call_id, "call_id", webrtc.MAX_CALL_ID_CHARS)
    check(len(offer.metadata) <= 64, f"{len(offer.metadata)} metadata entries")
    for key, value in offer.metadata.items():
        check_text(key, "metadata key", 128)
        check_text(value, "metadata value", 1024)


if __name__ == "__main__":
    fuzz_main(TestOneInput)
