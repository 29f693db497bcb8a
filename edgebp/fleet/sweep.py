"""Sweep jobs (seeds, number formats, learning rates, ...) as Ray tasks on a cluster, or in a local process pool.

    from edgebp.fleet.sweep import run_jobs
    results = run_jobs(train_one, jobs)                            # local processes, one per core
    results = run_jobs(train_one, jobs, cluster="auto")            # the Ray cluster this machine belongs to
    results = run_jobs(train_one, jobs, cluster="ray://head:10001", shared=(X, T))

``fn`` is a picklable (module-level) function; it is called ``fn(job)``, or ``fn(job, shared)`` when ``shared``
is given: data every job needs, sent once (Ray: one object in the cluster's object store; processes: handed to
each worker once). Results come back in the order of ``jobs``. An exception in a job is raised here (from
Ray it arrives as a subclass of its own type, so ``except EdgeBPError`` still catches it).

``cluster``: None runs a ``ProcessPoolExecutor`` (``processes`` workers, default every core; 1 runs in this
process); ``"local"`` starts a Ray instance on this machine with ``processes`` CPUs; ``"auto"`` joins the
running cluster this machine is part of (``ray start --head`` / ``ray start --address=...``); ``HOST:PORT``
or ``ray://HOST:10001`` joins that cluster. Every node must have edgebp installed (the same version), or pass
``runtime_env`` (e.g. ``{"pip": ["edgebp[fleet]"]}``; see Ray's runtime environments).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, List, Optional, Sequence

from ..errors import ConfigError, EdgeBPError

_SHARED = None     # the shared data in each worker process of the local pool


def _init(shared) -> None:
    global _SHARED
    _SHARED = shared


def _call_shared(fn, job):
    return fn(job, _SHARED)


def _local(fn, jobs, shared, processes: Optional[int], has_shared: bool) -> List[Any]:
    n = int(processes or os.cpu_count() or 1)
    if n < 1:
        raise ConfigError(f"processes must be at least 1, got {processes}")
    if n == 1 or len(jobs) <= 1:
        return [fn(j, shared) if has_shared else fn(j) for j in jobs]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(n, len(jobs)), mp_context=ctx, initializer=_init,
                             initargs=(shared,)) as ex:
        if has_shared:
            return list(ex.map(_call_shared, [fn] * len(jobs), jobs))
        return list(ex.map(fn, jobs))


def ray_connect(cluster: str, processes: Optional[int] = None, runtime_env: Optional[dict] = None) -> bool:
    """Initialises Ray for ``cluster`` ('local', 'auto', an address); True if this call started it."""
    try:
        import ray
    except ImportError:
        raise EdgeBPError("running on a Ray cluster needs Ray: pip install 'edgebp[fleet]' (or pip install ray)") \
            from None
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")   # no GPUs; silences Ray's FutureWarning
    kw = dict(include_dashboard=False, log_to_driver=False)
    if runtime_env:
        kw["runtime_env"] = runtime_env
    try:
        if cluster == "local":
            ray.init(num_cpus=int(processes or os.cpu_count() or 1), object_store_memory=128 << 20, **kw)
        else:
            ray.init(address=cluster, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise EdgeBPError(f"cannot join the Ray cluster at {cluster!r}: {e}. Start one with `ray start --head` "
                          f"(then --cluster auto on that machine), or give the head's address HOST:6379 or "
                          f"ray://HOST:10001") from None
    return True


def run_jobs(fn: Callable, jobs: Sequence, cluster: Optional[str] = None, processes: Optional[int] = None,
             shared: Any = None, runtime_env: Optional[dict] = None, cpus_per_job: float = 1.0) -> List[Any]:
    """``[fn(job) for job in jobs]`` (or ``fn(job, shared)`` with ``shared``), run in parallel: as Ray tasks
    when ``cluster`` is given, else in a local process pool. See the module docstring."""
    jobs = list(jobs)
    has_shared = shared is not None
    if cluster is None:
        return _local(fn, jobs, shared, processes, has_shared)
    if not isinstance(cluster, str) or not cluster:
        raise ConfigError(f"cluster must be 'local', 'auto' or a Ray address, got {cluster!r}")
    import ray
    started = ray_connect(cluster, processes, runtime_env)
    try:
        task = ray.remote(num_cpus=cpus_per_job)(_ray_call)
        ref = ray.put(shared) if has_shared else None
        return ray.get([task.remote(fn, j, ref, has_shared) for j in jobs])
    finally:
        if started:
            ray.shutdown()


def _ray_call(fn, job, shared, has_shared):
    return fn(job, shared) if has_shared else fn(job)


def train_job(job: dict, data) -> dict:
    """One sweep job: ``job`` = {spec: NetSpec dict, cfg: TrainConfig dict, epochs, engine 'fixed'|'float'} trained
    on ``data`` = (X, T, X_test, T_test) as ``edgebp train`` trains it. Returns the test accuracy and loss, the
    final training loss, and (fixed) the CRC-32 of the integer weights, which identifies them exactly."""
    import zlib
    import numpy as np
    from ..config import NetSpec, StopRule, TrainConfig
    from ..fixed import FixedNet
    from ..mirror import FloatNet
    X, T, X_test, T_test = data
    spec, cfg = NetSpec.from_dict(job["spec"]), TrainConfig(**job["cfg"])
    fixed = FixedNet(spec, cfg)
    net = fixed if job.get("engine", "fixed") == "fixed" else FloatNet(spec, cfg, weights=fixed.get_weights())
    hist = net.fit(X, T, StopRule(epochs=int(job.get("epochs", 10))))
    loss, acc = net.evaluate(X_test, T_test)
    out = dict(job=job, test_accuracy=acc, test_loss=loss, train_loss=hist.loss[-1], pid=os.getpid())
    if net is fixed:
        crc = 0
        for W, b in fixed.get_int_weights():
            crc = zlib.crc32(np.ascontiguousarray(W, "<i2").tobytes(), crc)
            crc = zlib.crc32(np.ascontiguousarray(b, "<i2").tobytes(), crc)
        out["weights_crc"] = crc
    return out
