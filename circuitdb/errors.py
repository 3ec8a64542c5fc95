"""The one exception type users see: a single readable line, never a traceback."""


class CircuitdbError(Exception):
    """A user-facing failure (bad input, empty selection, unreachable store); its message is one line."""


class StoreError(CircuitdbError):
    """The store could not be reached, opened or written."""
