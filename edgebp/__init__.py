"""edgebp: fixed-point backpropagation for microcontrollers, with a float64 mirror to judge it by."""
from .errors import EdgeBPError, ConfigError, DataError, CoreError, MemoryBudgetError, DeviceError, ProtocolError
from .config import Layer, NetSpec, TrainConfig, StopRule

# The one definition of the package version (pyproject.toml reads it from here; `edgebp --version` prints it).
# Its major.minor is the C core's EBP_VERSION_MAJOR.EBP_VERSION_MINOR (tests/test_packaging.py checks).
__version__ = "0.1.0"

__all__ = ["EdgeBPError", "ConfigError", "DataError", "CoreError", "MemoryBudgetError", "DeviceError",
           "ProtocolError", "Layer", "NetSpec", "TrainConfig", "StopRule", "FixedNet", "FloatNet", "load_dataset",
           "load_fann", "Dataset", "load_weights", "save_weights", "apply_weights", "Dense", "Conv1D", "MaxPool1D",
           "AvgPool1D", "GlobalAvgPool1D", "Flatten", "__version__"]


def __getattr__(name):  # lazy: the compiled core is imported only when a fixed-point network is used
    if name == "FixedNet":
        from .fixed import FixedNet
        return FixedNet
    if name == "FloatNet":
        from .mirror import FloatNet
        return FloatNet
    if name in ("load_fann", "Dataset", "load_dataset", "list_datasets"):
        from . import data
        return getattr(data, name)
    if name in ("load_weights", "save_weights", "apply_weights", "check_save_path"):
        from . import weights
        return getattr(weights, name)
    if name in ("Dense", "Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D", "Flatten"):
        from . import layers
        return getattr(layers, name)
    if name in ("FixedMLPClassifier", "FixedMLPRegressor"):
        from . import sklearn as sk
        return getattr(sk, name)
    raise AttributeError(f"module 'edgebp' has no attribute {name!r}")
