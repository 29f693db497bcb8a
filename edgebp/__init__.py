"""edgebp: fixed-point backpropagation for microcontrollers, with a float64 mirror to judge it by."""
from .errors import EdgeBPError, ConfigError, DataError, CoreError, MemoryBudgetError, DeviceError, ProtocolError
from .config import Layer, NetSpec, TrainConfig, StopRule

__all__ = ["EdgeBPError", "ConfigError", "DataError", "CoreError", "MemoryBudgetError", "DeviceError",
           "ProtocolError", "Layer", "NetSpec", "TrainConfig", "StopRule"]


def __getattr__(name):  # lazy: the compiled core is imported only when a fixed-point network is used
    if name == "FixedNet":
        from .fixed import FixedNet
        return FixedNet
    if name == "FloatNet":
        from .mirror import FloatNet
        return FloatNet
    if name in ("load_fann", "Dataset", "load_dataset"):
        from . import data
        return getattr(data, name)
    raise AttributeError(name)
