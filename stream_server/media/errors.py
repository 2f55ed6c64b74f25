"""Errors a carrier adapter raises for input it cannot use."""


class MalformedMessage(ValueError):
    """One message was unusable (bad JSON, bad base64, missing fields).

    The connection survives: the message is dropped, counted and logged, and everything
    already received is kept.
    """


class UnsupportedStream(ValueError):
    """The stream as a whole cannot be processed (e.g. an unknown audio encoding)."""


# What a parser may still raise on hostile input nobody foresaw (a 400-digit JSON number, a list
# where a string belongs, Infinity). Such a message is counted and dropped like a malformed
# one: a parser's blind spot costs one message, never the call or the recording.
UNFORESEEN_INPUT_ERRORS: tuple[type[Exception], ...] = (
    ValueError, TypeError, ArithmeticError, LookupError, AttributeError, RecursionError,
)
