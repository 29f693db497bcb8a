"""One exception family for everything edgebp raises on bad input or a failed operation."""


class EdgeBPError(Exception):
    """Base class of every edgebp error."""


class ConfigError(EdgeBPError, ValueError):
    """A network or training description that cannot work (unknown name, bad size or format)."""


class DataError(EdgeBPError, ValueError):
    """Input data with the wrong shape, NaN/inf, or values the chosen format cannot hold."""


class CoreError(EdgeBPError, RuntimeError):
    """The C core returned an error status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class MemoryBudgetError(EdgeBPError):
    """A model that does not fit the memory (buffer or device arena) it was given."""


class DeviceError(EdgeBPError, IOError):
    """Talking to a board failed: timeout, corrupt frame, an error response."""


class ProtocolError(DeviceError):
    """A frame that does not decode: bad CRC, truncated, unknown message."""
