"""Evidence and training exports of a stored call.

`package.py` builds the ZIPs (the recordings byte-for-byte with the transcript, alerts and
supervisor actions; or a redacted copy for model training), `integrity.py` hashes and signs
them, `verify.py` checks one (`stream-server verify`), `redaction.py` finds personal data in
transcript text, `report.py` renders the printable transcript.
"""
