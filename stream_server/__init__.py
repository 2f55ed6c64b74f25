"""stream_server: real-time call-audio analysis that alerts supervisors to abusive callers."""

__version__ = "0.1.0"
