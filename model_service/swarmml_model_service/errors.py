"""The request error every parser raises: its own module so protocol, columns and binary can share it."""


class BadRequest(ValueError):
    """The request is wrong; the message says what and where (a 400)."""
