"""Speech recognition: weight location (models.py) and the shared Whisper engine (engine.py).

Submodules are not imported here: importing faster-whisper costs time and memory that
processes which never transcribe (CLI, tests of other parts) should not pay.
"""
