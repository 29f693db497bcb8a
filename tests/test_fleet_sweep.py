"""Sweep jobs as Ray tasks on a local Ray cluster, in a local process pool and in this process: same results."""
import os

import pytest

from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import ConfigError, EdgeBPError
from edgebp.fleet.sweep import run_jobs, train_job
from test_fleet import need_flower


@pytest.fixture(scope="module")
def sweep():
    from edgebp.data import load_dataset
    ds = load_dataset("diabetes")
    data = (ds.X_train[:120], ds.T_train[:120], ds.X_test, ds.T_test)
    spec = NetSpec.from_sizes([8, 6, 2], "sigmoid", "mse").to_dict()
    jobs = [dict(spec=spec, cfg=TrainConfig(lr=lr, seed=s, rounding="stochastic").to_dict(), epochs=3)
            for s in (1, 2, 3) for lr in (0.1, 0.4)]
    return jobs, data


def key(results):
    return [(r["weights_crc"], r["test_accuracy"], r["train_loss"]) for r in results]


def test_ray_tasks_pool_and_serial_agree(sweep):
    need_flower()
    jobs, data = sweep
    serial = run_jobs(train_job, jobs, processes=1, shared=data)
    pool = run_jobs(train_job, jobs, processes=2, shared=data)
    ray = run_jobs(train_job, jobs, cluster="local", processes=2, shared=data)
    assert key(serial) == key(pool) == key(ray)
    assert [r["job"] for r in ray] == jobs                      # in the order of the jobs
    assert len({r["weights_crc"] for r in serial}) == len(jobs)  # seeds and rates do change the integers
    me = os.getpid()                  # the jobs ran where they were sent (how a pool spreads them is its own)
    assert {r["pid"] for r in serial} == {me} and me not in {r["pid"] for r in pool + ray}


def test_errors_in_jobs_reach_the_caller(sweep):
    need_flower()
    jobs, data = sweep
    bad = dict(jobs[0], spec=NetSpec.from_sizes([8, 6, 3], "sigmoid", "mse").to_dict())   # 3 outputs, data has 2
    for kw in (dict(processes=2), dict(cluster="local", processes=2)):
        with pytest.raises(EdgeBPError, match="targets must have shape"):
            run_jobs(train_job, [jobs[0], bad], shared=data, **kw)
    with pytest.raises(ConfigError, match="cluster must be"):
        run_jobs(train_job, jobs, cluster=5, shared=data)


def test_advise_on_a_ray_cluster_ranks_like_local_processes():
    """`edgebp advise --cluster local`: the same candidates, the same numbers as the process pool."""
    need_flower()
    from edgebp.advise import advise
    from edgebp.config import StopRule
    from edgebp.data import load_dataset
    ds = load_dataset("diabetes")
    X, T = ds.X_train[:150], ds.T_train[:150]
    spec = NetSpec.from_sizes([8, 6, 2], "sigmoid", "mse")
    args = (spec, TrainConfig(lr=0.2, seed=1), StopRule(epochs=2), X, T, ds.X_test, ds.T_test)
    kw = dict(w_fracs=(10, 12), a_fracs=(12,), roundings=("stochastic",))
    local = advise(*args, jobs=2, **kw)
    on_ray = advise(*args, jobs=2, cluster="local", **kw)
    def strip(x):           # wall times and how it was run differ; every number a candidate trained to must not
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("seconds", "jobs", "reproduce", "command")}
        return [strip(v) for v in x] if isinstance(x, list) else x
    assert strip(local) == strip(on_ray)
    assert len(local["candidates"]) == 2
