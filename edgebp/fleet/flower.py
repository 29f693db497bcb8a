"""Flower glue: the ``ClientApp`` of an edgebp device, the integer-FedAvg strategy, simulated fleets on Ray.

    from edgebp.fleet.flower import simulate
    result = simulate(task, rounds=10)                    # task: edgebp.fleet.client.FleetTask
    result = simulate(task, rounds=10, ray_address="auto")   # on a running multi-machine Ray cluster

Messages carry the global model as one Flower ``ArrayRecord`` with the arrays ``fixed.<layer>.W`` / ``.b``
(int16, the core's integers) and ``float.<layer>.W`` / ``.b`` (float64, the float mirror's weights): the two
fleets train side by side from the same start, each averaged by its own rule (``edgebp.fleet.fedavg``).
Devices listed in ``boards`` (device index -> serial URL) train on that board through ``DeviceNet``; the
others on the host core. Flower's simulation engine runs the ClientApps in Ray actors; the ServerApp runs in
this process, so the strategy's per-round records are read from it when ``run_simulation`` returns.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from ..errors import EdgeBPError
from .client import FleetTask, initial_weights, virtual_evaluate, virtual_round
from .fedavg import Weights, fedavg_float, fedavg_int

# edgebp sends nothing anywhere: Flower's usage telemetry is off unless the user turned it on explicitly.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")   # no GPUs here; silences Ray's FutureWarning

try:
    from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    HAVE_FLWR = True
except ImportError:          # the optional extra is missing: simulate() says how to install it
    HAVE_FLWR = False
    FedAvg = object

ENGINE_KEYS = ("fixed", "float")


def require_flower() -> None:
    if not HAVE_FLWR:
        raise EdgeBPError("fleets need Flower with its Ray simulation engine: pip install 'edgebp[fleet]' "
                          "(or pip install 'flwr[simulation]')")


# --- the model in a message ----------------------------------------------------------------------------------
def pack(weights: Dict[str, Optional[Weights]]) -> "ArrayRecord":
    d = {}
    for eng, w in weights.items():
        if w is None:
            continue
        for i, (W, b) in enumerate(w):
            dt = np.int16 if eng == "fixed" else np.float64
            d[f"{eng}.{i}.W"] = Array(np.ascontiguousarray(W, dtype=dt))
            d[f"{eng}.{i}.b"] = Array(np.ascontiguousarray(b, dtype=dt))
    return ArrayRecord(d)


def unpack(rec: "ArrayRecord") -> Dict[str, Optional[Weights]]:
    arrays = {k: v.numpy() for k, v in rec.items()}
    out: Dict[str, Optional[Weights]] = {}
    for eng in ENGINE_KEYS:
        layers = sorted({int(k.split(".")[1]) for k in arrays if k.startswith(eng + ".")})
        out[eng] = [(arrays[f"{eng}.{i}.W"], arrays[f"{eng}.{i}.b"]) for i in layers] if layers else None
    return out


# --- client ----------------------------------------------------------------------------------------------------
def make_client_app(task: FleetTask, boards: Optional[Dict[int, str]] = None,
                    board_timeout: float = 30.0) -> "ClientApp":
    """The ClientApp of device ``partition-id``: a round trains locally for ``task.local_epochs`` epochs from
    the global weights and replies with its weights and sample count; an evaluation evaluates the global
    weights on the device's own rows."""
    require_flower()
    boards = dict(boards or {})
    app = ClientApp()

    @app.train()
    def train(msg: "Message", context: "Context") -> "Message":
        k = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        g = unpack(msg.content["arrays"])
        t0 = time.monotonic()
        ups = virtual_round(task, k, rnd, None if k in boards else g["fixed"], g["float"])
        if k in boards and g["fixed"] is not None:
            from .boards import board_round
            ups["fixed"] = board_round(task, k, rnd, g["fixed"], boards[k], board_timeout)
        m = {"num-examples": next(iter(ups.values())).n, "device": k, "seconds": time.monotonic() - t0,
             "board": 1 if k in boards else 0}
        for eng, u in ups.items():
            m[f"{eng}-loss"], m[f"{eng}-accuracy"] = float(u.loss), float(u.accuracy)
        for key, v in ups["fixed"].link_bytes.items() if "fixed" in ups else ():
            m[f"bytes-{key}"] = int(v)
        content = RecordDict({"arrays": pack({e: u.weights for e, u in ups.items()}), "metrics": MetricRecord(m)})
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: "Message", context: "Context") -> "Message":
        k = int(context.node_config["partition-id"])
        g = unpack(msg.content["arrays"])
        res, b = virtual_evaluate(task, k, None if k in boards else g["fixed"], g["float"])
        m = {"num-examples": 0, "device": k, "board": 1 if k in boards else 0}
        if k in boards and g["fixed"] is not None:
            from .boards import board_evaluate
            res["fixed"], b = board_evaluate(task, k, g["fixed"], boards[k], board_timeout)
        m.update({f"bytes-{key}": int(v) for key, v in b.items()})
        for eng, (loss, acc) in res.items():
            m[f"{eng}-loss"], m[f"{eng}-accuracy"] = float(loss), float(acc)
        from .client import device_data
        m["num-examples"] = len(device_data(task, k)[0])
        return Message(content=RecordDict({"metrics": MetricRecord(m)}), reply_to=msg)

    return app


# --- server ----------------------------------------------------------------------------------------------------
def _metrics(msg) -> dict:
    return dict(next(iter(msg.content.metric_records.values())))


class IntegerFedAvg(FedAvg):
    """Flower's FedAvg with the aggregation replaced: the core's int16 weights by ``fedavg_int`` (exact, round
    half away from zero), the float mirror's by ``fedavg_float``, both weighted by the sample counts.

    Every round is recorded in ``self.rounds`` (per-device metrics and bytes); ``self.global_weights[r]`` is
    the global model after round r (0: the start)."""

    def __init__(self, n_devices: int, **kw):
        require_flower()
        super().__init__(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n_devices,
                         min_evaluate_nodes=n_devices, min_available_nodes=n_devices, **kw)
        self.n_devices = n_devices
        self.train_replies: Dict[int, List[dict]] = {}
        self.eval_replies: Dict[int, List[dict]] = {}
        self.failures: Dict[int, List[str]] = {}
        self.global_weights: Dict[int, Dict[str, Optional[Weights]]] = {}
        self.client_weights: Dict[int, Dict[int, Dict[str, Weights]]] = {}
        self.keep_client_weights = False

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        ok = [m for m in replies if not m.has_error()]
        self.failures[server_round] = [m.error.reason for m in replies if m.has_error()]
        if len(replies) < self.n_devices:
            self.failures[server_round].append(f"{self.n_devices - len(replies)} device(s) did not answer the "
                                               f"training request within the round timeout")
        if not ok:     # keep the global model; simulate() raises once Flower and Ray have stopped
            self.train_replies[server_round] = []
            self.global_weights[server_round] = self.global_weights[server_round - 1]
            return None, None
        ok.sort(key=lambda m: int(_metrics(m)["device"]))       # order does not change the integers
        metrics = [_metrics(m) for m in ok]
        ws = [unpack(m.content.array_records["arrays"]) for m in ok]
        counts = [int(mm["num-examples"]) for mm in metrics]
        new = {}
        for eng in ENGINE_KEYS:
            if ws[0][eng] is not None:
                new[eng] = (fedavg_int if eng == "fixed" else fedavg_float)([w[eng] for w in ws], counts)
        self.train_replies[server_round] = metrics
        self.global_weights[server_round] = new
        if self.keep_client_weights:
            self.client_weights[server_round] = {int(mm["device"]): w for mm, w in zip(metrics, ws)}
        summary = MetricRecord({"devices": len(ok), "num-examples": sum(counts)})
        return pack(new), summary

    def aggregate_evaluate(self, server_round, replies):
        replies = list(replies)
        self.failures.setdefault(server_round, []).extend(m.error.reason for m in replies if m.has_error())
        if len(replies) < self.n_devices:
            self.failures[server_round].append(f"{self.n_devices - len(replies)} device(s) did not answer the "
                                               f"evaluation request within the round timeout")
        self.eval_replies[server_round] = sorted((_metrics(m) for m in replies if not m.has_error()),
                                                 key=lambda mm: int(mm["device"]))
        return MetricRecord({"devices": len(self.eval_replies[server_round])})


# --- a simulated fleet -----------------------------------------------------------------------------------------
def _summary(values: List[float]) -> dict:
    return dict(mean=float(np.mean(values)), worst=float(np.min(values))) if values else dict(mean=None, worst=None)


def round_record(task: FleetTask, strategy: IntegerFedAvg, rnd: int, test, seconds: float) -> dict:
    """The JSON-ready record of round ``rnd``: per engine the global model's test accuracy, the mean and worst
    device accuracy of the global model on each device's own rows (and of each device's own update before
    averaging), and the bytes on each board's link."""
    from ..fixed import FixedNet
    from ..mirror import FloatNet
    from .client import evaluate_int
    X_test, T_test = test
    spec, cfg = task.netspec, task.config()
    tr, ev = strategy.train_replies.get(rnd, []), strategy.eval_replies.get(rnd, [])
    rec = dict(round=rnd, seconds=round(seconds, 3), devices=len(tr), failures=strategy.failures.get(rnd, []))
    if tr:
        rec["device_seconds_max"] = round(max(float(m["seconds"]) for m in tr), 3)
    g = strategy.global_weights[rnd]
    for eng in task.engines:
        if g.get(eng) is None:
            continue
        if eng == "fixed":
            net = FixedNet(spec, cfg)
            net.set_int_weights(g[eng])
            loss, acc = evaluate_int(net, net.quantize_inputs(X_test), net.quantize_targets(T_test))
        else:
            loss, acc = FloatNet(spec, cfg, weights=g[eng]).evaluate(X_test, T_test)
        dev = _summary([m[f"{eng}-accuracy"] for m in ev if f"{eng}-accuracy" in m])
        local = _summary([m[f"{eng}-accuracy"] for m in tr if f"{eng}-accuracy" in m])
        rec[eng] = dict(test_accuracy=float(acc), test_loss=float(loss), device_accuracy_mean=dev["mean"],
                        device_accuracy_worst=dev["worst"], local_accuracy_mean=local["mean"],
                        local_accuracy_worst=local["worst"])
    per_dev: Dict[int, Dict[str, dict]] = {}
    boards = set()
    for phase, ms in (("train", tr), ("evaluate", ev)):
        for m in ms:
            b = {k[len("bytes-"):]: int(v) for k, v in m.items() if k.startswith("bytes-")}
            if b:
                per_dev.setdefault(int(m["device"]), {})[phase] = b
            if m.get("board"):
                boards.add(int(m["device"]))
    if per_dev:
        total = {k: sum(p[ph]["total"] for ph in p) for k, p in sorted(per_dev.items())}
        kinds = sorted({f"{ph}.{kind}" for p in per_dev.values() for ph in p for kind in p[ph]})
        rec["link_bytes"] = dict(
            per_device_mean=float(np.mean(list(total.values()))), per_device_max=int(max(total.values())),
            total=int(sum(total.values())), per_device={str(k): v for k, v in total.items()},
            mean_by_kind={kd: float(np.mean([p.get(kd.split(".")[0], {}).get(kd.split(".")[1], 0)
                                             for p in per_dev.values()])) for kd in kinds},
            measured_on_boards=sorted(boards),
            hello_per_device={str(k): sum(v for ph in p.values() for kd, v in ph.items() if kd.startswith("hello_"))
                              for k, p in sorted(per_dev.items()) if k in boards},
            retransmitted_per_device={str(k): sum(v for ph in p.values() for kd, v in ph.items()
                                                  if kd.startswith(("retransmitted_", "corrupt_", "delimiters_")))
                                      for k, p in sorted(per_dev.items()) if k in boards})
    return rec


def ray_init_args(num_cpus: Optional[int] = None, address: Optional[str] = None,
                  object_store_mb: int = 256) -> dict:
    """Arguments for ``ray.init``: a local Ray cluster limited to ``num_cpus`` (default: every core) and a small
    object store, or, with ``address`` ('auto' or 'HOST:PORT' / 'ray://HOST:10001'), an existing cluster."""
    if address:
        return dict(address=address, include_dashboard=False, log_to_driver=False)
    return dict(num_cpus=int(num_cpus or os.cpu_count() or 1), object_store_memory=object_store_mb << 20,
                include_dashboard=False, log_to_driver=False)


def simulate(task: FleetTask, rounds: int, boards: Optional[Dict[int, str]] = None,
             num_cpus: Optional[int] = None, ray_address: Optional[str] = None, cpus_per_device: float = 1.0,
             progress: Optional[Callable[[dict], None]] = None, keep_client_weights: bool = False,
             board_timeout: float = 30.0, quiet: bool = True, round_timeout: float = 3600.0) -> dict:
    """Runs a fleet of ``task.n_devices`` devices for ``rounds`` rounds with Flower's simulation engine on Ray.
    Returns {'rounds': [record per round], 'initial': record of round 0, 'strategy': the IntegerFedAvg}.
    ``progress`` is called with each round's record as it completes. A device that has not answered within
    ``round_timeout`` seconds is left out of that round (and named in its ``failures``)."""
    require_flower()
    import ray
    from flwr.simulation import run_simulation
    from .client import shards_of
    if rounds < 1:
        raise EdgeBPError(f"rounds must be >= 1, got {rounds}")
    ds, _ = shards_of(task)                      # fails here, with a clear message, on a bad data set or split
    test = (ds.X_test, ds.T_test)
    gi, gf = initial_weights(task)
    start = {"fixed": gi if "fixed" in task.engines else None, "float": gf if "float" in task.engines else None}
    strategy = IntegerFedAvg(task.n_devices)
    strategy.keep_client_weights = keep_client_weights
    strategy.global_weights[0] = {k: v for k, v in start.items() if v is not None}
    records: List[dict] = []
    clock = [time.monotonic()]

    def evaluate_fn(rnd: int, arrays) -> "MetricRecord":
        now = time.monotonic()
        rec = round_record(task, strategy, rnd, test, 0.0 if rnd == 0 else now - clock[0])
        records.append(rec)
        if progress:
            progress(rec)
        clock[0] = time.monotonic()
        return MetricRecord({"round": rnd})

    server = ServerApp()

    @server.main()
    def main(grid: "Grid", context: "Context") -> None:
        strategy.start(grid=grid, initial_arrays=pack(start), num_rounds=rounds, evaluate_fn=evaluate_fn,
                       timeout=round_timeout)

    client = make_client_app(task, boards, board_timeout)
    backend = {"init_args": ray_init_args(num_cpus, ray_address),
               "client_resources": {"num_cpus": float(cpus_per_device), "num_gpus": 0.0}}
    # numpy's OpenBLAS deadlocked (exec_blas spinning) in the server thread's float evaluation under a
    # heavily loaded machine; one BLAS thread in this process avoids it (the arrays here are small)
    try:
        from threadpoolctl import threadpool_limits
        blas = threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        blas = None
    levels = {}
    if quiet:
        for name in ("flwr", "ray"):
            levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.CRITICAL)   # failures are in the records
    try:
        run_simulation(server_app=server, client_app=client, num_supernodes=task.n_devices,
                       backend_config=backend)
    finally:
        if blas is not None:
            blas.restore_original_limits()
        for name, lv in levels.items():
            logging.getLogger(name).setLevel(lv)
        if ray.is_initialized():
            ray.shutdown()
    for rec in records[1:]:
        if rec["devices"] == 0:
            raise EdgeBPError(f"round {rec['round']}: every device failed; first error: "
                              f"{(rec['failures'] or ['none reported'])[0]}")
    if len(records) != rounds + 1:
        raise EdgeBPError(f"the Flower simulation stopped after {len(records) - 1} of {rounds} rounds; run with "
                          f"quiet=False (--verbose) to see Flower's log")
    return dict(initial=records[0], rounds=records[1:], strategy=strategy)
