"""Errors a carrier adapter raises for input it cannot use."""


class MalformedMessage(ValueError):
    """One message was unusable (bad JSON, bad base64, missing fields).

    The connection survives: the message is dropped, counted and logged, and everything
    already received is kept.
    """


class UnsupportedStream(ValueError):
    """The stream as a whole cannot be processed (e.g. an unknown audio encoding)."""
