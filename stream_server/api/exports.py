"""Exports of one call: the evidence package and the redacted training package (ZIP).

Both are built into a spooled temporary file off the event loop and streamed, so a long
call's recordings never sit in memory twice. Each is signed with the server's evidence key
(STREAM_SERVER_EVIDENCE_KEY, else `<data_dir>/evidence.key`); `stream-server verify` checks one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from ..evidence.integrity import EvidenceKeyError, evidence_key
from ..evidence.package import ExportError, exportable_tracks, write_evidence_package, write_training_package
from ..media.metadata import clean_text
from .access import Principal, audit, call_in_scope, require
from .retention import refuse_purged_audio

router = APIRouter(prefix="/v1/calls", tags=["exports"])

_SPOOL_BYTES = 16 << 20  # larger exports go to a temporary file
_ZIP = {200: {"content": {"application/zip": {}}, "description": "ZIP; check it with `stream-server verify`."}}
_BY = Query(None, max_length=128, description="The supervisor exporting it, recorded in the manifest.")

Writer = Callable[[IO[bytes], dict[str, Any], Any, str, str], dict[str, Any]]


def _export(
    request: Request, call_id: str, principal: Principal, by: str | None, write: Writer, kind: str
) -> StreamingResponse:
    services, settings = request.app.state.services, request.app.state.settings
    call_in_scope(request, principal, call_id)
    call = services.store.get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id!r}")
    try:
        exportable_tracks(call, services.recordings)
    except ExportError as exc:
        if call.get("status") != "active":
            refuse_purged_audio(request, call_id)  # 410: retention removed the recordings
        status = 409 if call.get("status") == "active" else 404
        raise HTTPException(status, str(exc)) from None
    try:
        key = evidence_key(settings.evidence_key, settings.data_dir)
    except (EvidenceKeyError, OSError) as exc:
        raise HTTPException(500, f"cannot sign the export: {exc}") from None
    # `by` is what the client says; the token is who it is: the manifest keeps both.
    exported_by = f"{clean_text(by, 128)} (via {principal.name})" if by else principal.name
    audit(request, principal, f"export.{kind}", call_id, by=clean_text(by, 128) if by else None)
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    try:
        write(spool, call, services.recordings, key, exported_by)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 16):
                yield chunk

    filename = f"call-{call_id}-{kind}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type="application/zip", headers=headers)


@router.get("/{call_id}/evidence.zip", response_class=StreamingResponse, responses=_ZIP)
def evidence_zip(
    request: Request, call_id: str, by: str | None = _BY, principal: Principal = Depends(require("exports.evidence"))
) -> StreamingResponse:
    """The call's recordings as stored (matching the seal taken at call end), transcript with scores,
    alerts with status, supervisor actions, a printable transcript.html, and a signed manifest."""
    return _export(request, call_id, principal, by, write_evidence_package, "evidence")


@router.get("/{call_id}/training.zip", response_class=StreamingResponse, responses=_ZIP)
def training_zip(
    request: Request, call_id: str, by: str | None = _BY, principal: Principal = Depends(require("exports.training"))
) -> StreamingResponse:
    """The call for model training: personal data (phone and card numbers, e-mail, addresses, names)
    replaced by tags in the text and silenced in the audio; redactions.json says where."""
    return _export(request, call_id, principal, by, write_training_package, "training")
