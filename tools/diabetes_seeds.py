#!/usr/bin/env python3
"""Fixed-point vs float test accuracy on diabetes (8-16-2 sigmoid, squared error, online SGD, lr 0.2,
200 epochs, file order) over seeds 1-5: the setup whose float baselines are 75.0-75.8%."""
from edgebp import NetSpec, StopRule, TrainConfig
from edgebp.cli import make_engines
from edgebp.data import load_dataset

ds = load_dataset("diabetes")
print("seed   fixed   float    gap")
for seed in range(1, 6):
    acc = {}
    for name, eng in make_engines(NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(lr=0.2, seed=seed)).items():
        eng.fit(ds.X_train, ds.T_train, StopRule(epochs=200))
        acc[name] = eng.evaluate(ds.X_test, ds.T_test)[1]
    print(f"{seed:4d} {acc['fixed']:7.2%} {acc['float']:7.2%} {100 * (acc['fixed'] - acc['float']):+6.2f}")
