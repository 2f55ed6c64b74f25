"""Persistence: calls, segments and alerts in SQL; recordings as WAV files on disk."""
