"""Layer constructors for ``NetSpec.sequential``, read like Keras's::

    from edgebp.layers import Conv1D, MaxPool1D, GlobalAvgPool1D, Dense
    spec = NetSpec.sequential(input=(6, 100), layers=[Conv1D(8, 5, stride=2, act="relu"), MaxPool1D(2),
                                                       GlobalAvgPool1D(), Dense(4, act="softmax")])

A shaped input is (channels, length), stored channel-major: a sample vector is channel 0's values, then
channel 1's, ... (the layout of csrc/edgebp.h).
"""
from .config import AvgPool1D, Conv1D, Dense, Flatten, GlobalAvgPool1D, Layer, MaxPool1D, NetSpec

__all__ = ["Dense", "Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D", "Flatten", "Layer", "NetSpec"]
