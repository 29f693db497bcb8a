"""Bad arguments to TrainConfig and StopRule (issue 13, "every option checked"): each a ConfigError (an
EdgeBPError) that says what to do, before anything trains."""
import numpy as np
import pytest

from edgebp import ConfigError, EdgeBPError, NetSpec, StopRule, TrainConfig
from edgebp.mirror import FloatNet


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=-1), "full 32-bit value"),
    (dict(seed=2 ** 32), "full 32-bit value"),
    (dict(seed=1.5), "whole number"),
    (dict(seed="7"), "whole number"),
    (dict(lr="0.1"), "lr must be a number"),
    (dict(lr=None), "lr must be a number"),
    (dict(momentum="0.9", optimizer="momentum"), "momentum must be a number"),
    (dict(momentum=0.9), "use optimizer='momentum'"),
    (dict(batch_size=2.0), "whole number"),
    (dict(batch_size=-1), "batch_size must be >= 0"),
])
def test_train_config_refuses(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        TrainConfig(**kwargs).validate()
    assert isinstance(e.value, EdgeBPError)


def test_train_config_accepts_the_edges():
    for seed in (0, 1, 2 ** 32 - 1):
        TrainConfig(seed=seed).validate()
    TrainConfig(optimizer="momentum", momentum=0.9).validate()
    TrainConfig(optimizer="sgd", momentum=0.0).validate()


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=-1), "epochs must be a whole number >= 0"),
    (dict(epochs=2.5), "epochs must be a whole number"),
    (dict(validation_split=1.0), r"in \[0, 1\)"),
    (dict(validation_split=-0.1), r"in \[0, 1\)"),
    (dict(validation_split="0.2"), r"in \[0, 1\)"),
    (dict(patience=3), "patience needs validation data"),
    (dict(patience=0, validation_split=0.2), "patience must be a whole number"),
    (dict(target_loss=float("nan")), "target_loss must be a finite number"),
])
def test_stop_rule_refuses_in_fit(kwargs, match):
    net = FloatNet(NetSpec.from_sizes([2, 2, 1]), TrainConfig())
    X, T = np.zeros((10, 2)), np.zeros((10, 1))
    with pytest.raises(ConfigError, match=match):
        net.fit(X, T, StopRule(**kwargs))


def test_patience_with_explicit_validation_data_is_fine():
    net = FloatNet(NetSpec.from_sizes([2, 2, 1]), TrainConfig())
    X, T = np.zeros((10, 2)), np.zeros((10, 1))
    hist = net.fit(X, T, StopRule(epochs=3, patience=1), X_val=X, T_val=T)
    assert hist.epochs >= 1
    StopRule(epochs=0).validate()
