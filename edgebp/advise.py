"""Number-format advice: sweep fractional bits and rounding, recommend the smallest configuration that stays
within a given accuracy loss of the float mirror, and show the table that was measured.

Every candidate is trained exactly as ``edgebp train --engine fixed`` trains it (same flags, same stopping
rule, same seed), so retraining the recommended configuration reproduces the accuracy in the report bit for
bit. Candidates run in parallel worker processes (``jobs``, default: every core).

Memory: every tensor of the current core is int16, whatever its fractional bits, so all formats of one
network take the same bytes. The memory column is measured per candidate (``edgebp.fixed.memory``) and the
ranking is memory first, then accuracy; with equal memory that is accuracy alone, and the report says so.

Selection: candidates are judged on a validation split carved from the training set (the last fraction of
it, as ``fit`` holds it out; ``edgebp advise`` uses 20% unless --validation-split says otherwise), never on
the test set, whose numbers are reported beside. Classification ranks on validation accuracy (``max_loss``
in accuracy points); regression (targets that are not one-hot classes) on the validation loss (``max_loss``
in percent of the float mirror's validation loss). Only the Python API without any validation split falls
back to the test set, and the report says so.
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Callable, List, Optional, Sequence, Tuple


from .config import NetSpec, StopRule, TrainConfig
from .engine import check_data
from .errors import EdgeBPError

_DATA = None   # (X, T, X_test, T_test) in each worker process


def _init_worker(data) -> None:
    global _DATA
    _DATA = data


def describe(spec: NetSpec, rounding: str) -> str:
    """Compact format name: 'in12 w10 a12 nearest', per layer 'w10/12' when layers differ."""
    ws, as_ = [l.w_frac for l in spec.layers], [l.a_frac for l in spec.layers]
    w = str(ws[0]) if len(set(ws)) == 1 else "/".join(map(str, ws))
    a = str(as_[0]) if len(set(as_)) == 1 else "/".join(map(str, as_))
    return f"in{spec.in_frac} w{w} a{a} {rounding}"


def _val_rows(n: int, stop: StopRule) -> int:
    return int(round(n * stop.validation_split)) if stop.validation_split > 0 else 0


def train_candidate(task: Tuple[dict, dict, dict, str]) -> dict:
    """Trains one configuration on the worker's data (engine 'fixed' or 'float'); its accuracies and costs."""
    spec_d, cfg_d, stop_d, engine = task
    X, T, X_test, T_test = _DATA
    spec, cfg, stop = NetSpec.from_dict(spec_d), TrainConfig(**cfg_d), StopRule(**stop_d)
    out = dict(spec=spec_d, rounding=cfg.rounding, engine=engine, format=describe(spec, cfg.rounding))
    t0 = time.monotonic()
    try:
        from .fixed import FixedNet, memory
        from .mirror import FloatNet
        fixed = FixedNet(spec, cfg)
        net = fixed if engine == "fixed" else FloatNet(spec, cfg, weights=fixed.get_weights())
        hist = net.fit(X, T, stop)
        n_val = _val_rows(len(X), stop)
        out["train_loss"], out["train_accuracy"] = net.evaluate(X, T)   # as `edgebp train` reports them
        out["val_loss"], out["val_accuracy"] = (net.evaluate(X[len(X) - n_val:], T[len(T) - n_val:]) if n_val
                                                else (None, None))
        out["test_loss"], out["test_accuracy"] = net.evaluate(X_test, T_test)
        out["epochs"] = hist.epochs
        out["memory"] = memory(spec, cfg)["total"] if engine == "fixed" else net.memory_report()["total"]
        if engine == "fixed":
            st = net.stats()
            out["saturations"] = sum(s[f] for s in st for f in ("sat_out", "sat_delta", "sat_grad", "sat_param",
                                                               "sat_vel"))
            upd = sum(s["updates"] for s in st)
            out["zero_update_frac"] = sum(s["zero_updates"] for s in st) / upd if upd else 0.0
        out["error"] = None
    except EdgeBPError as e:     # e.g. the data do not fit a format: reported, not fatal
        out["error"] = str(e)
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out


def _spec_with(spec: NetSpec, in_frac=None, w=None, a=None) -> NetSpec:
    """A copy of spec with uniform (int) or per-layer (list) fractional bits replaced."""
    s = copy.deepcopy(spec)
    if in_frac is not None:
        s.in_frac = in_frac
    for i, l in enumerate(s.layers):
        if w is not None:
            l.w_frac = w[i] if isinstance(w, (list, tuple)) else w
        if a is not None:
            l.a_frac = a[i] if isinstance(a, (list, tuple)) else a
    return s


def _train_with_data(task, data):
    """One candidate as a Ray task: the data arrive once per worker as the sweep's shared object."""
    _init_worker(data)
    return train_candidate(task)


class _Pool:
    """Runs tasks in worker processes (or in this one when jobs == 1), or as Ray tasks on ``cluster``
    ('local', 'auto' or an address; edgebp.fleet.sweep)."""

    def __init__(self, data, jobs: int, cluster: Optional[str] = None):
        self.jobs, self.data, self.cluster = jobs, data, cluster
        self.ex = None
        if jobs > 1 and not cluster:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            self.ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                          initargs=(data,))

    def map(self, tasks, progress=None):
        """Results in task order; ``progress()`` is called after each finished task."""
        if self.cluster:
            from .fleet.sweep import run_jobs
            out = run_jobs(_train_with_data, list(tasks), cluster=self.cluster, shared=self.data)
            if progress:
                for _ in out:
                    progress()
            return out
        if self.ex is None:
            _init_worker(self.data)
            it = (train_candidate(t) for t in tasks)
        else:
            it = self.ex.map(train_candidate, tasks)
        out = []
        for r in it:
            out.append(r)
            if progress:
                progress()
        return out

    def close(self):
        if self.ex is not None:
            self.ex.shutdown()


def advise(spec: NetSpec, cfg: TrainConfig, stop: StopRule, X, T, X_test, T_test,
           w_fracs: Sequence[int] = (6, 8, 10, 12, 14), a_fracs: Sequence[int] = (8, 10, 12, 14),
           in_fracs: Optional[Sequence[int]] = None, roundings: Sequence[str] = ("nearest", "stochastic"),
           max_loss: float = 1.0, jobs: Optional[int] = None, per_tensor: bool = False,
           progress: Optional[Callable[[int, int], None]] = None, cluster: Optional[str] = None) -> dict:
    """Sweeps formats and recommends one; returns the report (fields in docs/compare.md).

    max_loss: accuracy the fixed-point network may lose against the float mirror, in percentage points.
    per_tensor: after the uniform grid, try each tensor's fractional bits (inputs, each layer's weights and
    activations) over its grid, one tensor at a time, starting from the best uniform format.
    progress(done, total): called after every trained candidate (the total grows by the per-tensor round).
    """
    X, T = check_data(spec, X, T)
    X_test, T_test = check_data(spec, X_test, T_test)
    jobs = jobs or os.cpu_count() or 1
    in_fracs = list(in_fracs) if in_fracs else [spec.in_frac]
    stop_d = asdict(stop)
    regression = not is_classification(T)
    select = ("val" if stop.validation_split > 0 else "test") + ("_loss" if regression else "_accuracy")

    def task(s: NetSpec, rounding: str, engine="fixed"):
        c = copy.deepcopy(cfg)
        c.rounding = rounding
        return (s.to_dict(), asdict(c), stop_d, engine)

    tasks = [task(spec, cfg.rounding, "float")]       # the slowest run first
    for r in roundings:
        for i in in_fracs:
            for w in w_fracs:
                for a in a_fracs:
                    tasks.append(task(_spec_with(spec, i, w, a), r))
    t0 = time.monotonic()
    pool = _Pool((X, T, X_test, T_test), jobs, cluster)
    count = dict(done=0, total=len(tasks))

    def tick():
        count["done"] += 1
        if progress:
            progress(count["done"], count["total"])
    try:
        results = pool.map(tasks, tick)
        flt, rows = results[0], results[1:]
        if flt["error"]:
            raise EdgeBPError(f"the float mirror failed: {flt['error']}")
        if per_tensor:
            rows += _per_tensor(spec, rows, select, w_fracs, a_fracs, in_fracs, task, pool, tick, count)
    finally:
        pool.close()
    ref = flt[select]
    ok = [r for r in rows if not r["error"]]
    for r in ok:
        # classification: accuracy points lost; regression: percent more loss than the float mirror
        r["loss_vs_float"] = ((r[select] - ref) / ref * 100.0 if ref > 0 else (r[select] - ref) * 100.0) \
            if regression else (ref - r[select]) * 100.0
        r["within"] = r["loss_vs_float"] <= max_loss + 1e-9
    for r in rows:
        if r["error"]:
            r["loss_vs_float"], r["within"] = None, False
    sign = 1.0 if regression else -1.0     # sort key: smaller is better
    ranked = sorted(ok, key=lambda r: (not r["within"], r["memory"], sign * r[select], r["train_loss"]))
    for i, r in enumerate(ranked):
        r["rank"] = i + 1
    best = ranked[0] if ranked and ranked[0]["within"] else None
    mems = sorted({r["memory"] for r in ok})
    rep = dict(spec=spec.to_dict(), config=asdict(cfg), stop=stop_d, max_loss=max_loss, selected_on=select,
               task="regression" if regression else "classification",
               float=flt, candidates=ranked + [r for r in rows if r["error"]], recommended=best,
               closest=None if best else (min(ok, key=lambda r: sign * r[select]) if ok else None),
               memory_format_independent=len(mems) <= 1, memory_bytes=mems, jobs=jobs,
               seconds=round(time.monotonic() - t0, 2))
    rec = best or rep["closest"]
    if rec is not None:
        rep["reproduce"] = dict(spec=rec["spec"], rounding=rec["rounding"])
    return rep


def _per_tensor(spec, rows, select, w_fracs, a_fracs, in_fracs, task, pool, tick=None, count=None) -> List[dict]:
    """One round of coordinate search over the tensors, from the best uniform candidate."""
    ok = [r for r in rows if not r["error"]]
    if not ok:
        return []
    sign = 1.0 if select.endswith("_loss") else -1.0
    start = min(ok, key=lambda r: (sign * r[select], r["train_loss"]))
    base = NetSpec.from_dict(start["spec"])
    seen = {describe(NetSpec.from_dict(r["spec"]), r["rounding"]) for r in rows}
    tasks = []

    def add(s):
        name = describe(s, start["rounding"])
        if name not in seen:
            seen.add(name)
            tasks.append(task(s, start["rounding"]))

    for v in in_fracs:
        add(_spec_with(base, in_frac=v))
    for i in range(len(base.layers)):
        for v in w_fracs:
            add(_spec_with(base, w=[v if j == i else l.w_frac for j, l in enumerate(base.layers)]))
        for v in a_fracs:
            add(_spec_with(base, a=[v if j == i else l.a_frac for j, l in enumerate(base.layers)]))
    if count is not None:
        count["total"] += len(tasks)
    return pool.map(tasks, tick) if tasks else []


def is_classification(T) -> bool:
    """Targets that are classes: one-hot rows, or one output of 0s and 1s."""
    import numpy as np
    T = np.asarray(T)
    if not np.isin(T, (0.0, 1.0)).all():
        return False
    return T.shape[1] == 1 or bool((T.sum(axis=1) == 1).all())


def _pct(x):
    return "-" if x is None else f"{100 * x:.2f}%"


def format_advice(rep: dict, title: str = "") -> str:
    sel_key = rep["selected_on"]
    split = "validation" if sel_key.startswith("val") else "test"
    regression = sel_key.endswith("_loss")
    metric = "loss" if regression else "accuracy"
    fmt = (lambda x: "-" if x is None else f"{x:.5f}") if regression else _pct
    test_key = "test_loss" if regression else "test_accuracy"
    unit = "% loss" if regression else " points"
    f = rep["float"]
    out = [title] if title else []
    both = split != "test"
    accs = (f"{split} {metric} {fmt(f[sel_key])}, " if both else "") + f"test {metric} {fmt(f[test_key])}"
    out.append(f"float mirror: {accs}; allowed loss {rep['max_loss']:.2f}{unit}; {len(rep['candidates'])} "
               f"fixed-point formats measured on {rep['jobs']} processes in {rep['seconds']:.1f} s")
    if split == "test":
        out.append(f"selected on test {metric} (optimistic); pass a validation split to select on held-out "
                   "training rows")
    else:
        out.append(f"ranked on the {split} {metric} ({rep['stop']['validation_split']:.0%} of the training rows, "
                   "held out from its end); the test numbers are reported beside, never used to choose")
    out.append("")
    col = f"{split[:3]} {'loss' if regression else 'acc'}"
    out.append(f"{'rank':>4}  {'format':<28} {'memory':>7} " + (f"{col:>10} " if both else "")
               + f"{'test ' + ('loss' if regression else 'acc'):>10} {'vs float':>9} "
               f"{'zero upd':>8} {'sat':>7}  ok")
    for r in rep["candidates"]:
        if r["error"]:
            out.append(f"{'-':>4}  {r['format']:<28} invalid: {r['error']}")
            continue
        vs = f"{r['loss_vs_float']:>+7.2f}%" if regression else f"{0.0 - r['loss_vs_float']:>+8.2f}p"
        out.append(f"{r['rank']:>4}  {r['format']:<28} {r['memory']:>7} "
                   + (f"{fmt(r[sel_key]):>10} " if both else "")
                   + f"{fmt(r[test_key]):>10} {vs:>9} {100 * r['zero_update_frac']:>7.1f}% "
                   f"{r['saturations']:>7}  {'yes' if r['within'] else 'no'}")
    out.append("")
    if rep["memory_format_independent"] and rep["memory_bytes"]:
        out.append(f"memory: {rep['memory_bytes'][0]} bytes for every format. All tensors are int16 in this core, "
                   "so fractional bits trade precision against range, not memory; equal-memory formats are ranked "
                   f"by {metric}.")
    rec = rep["recommended"]

    def vs(r):
        return f"{r['loss_vs_float']:+.2f}% loss vs float" if regression else \
            f"{0.0 - r['loss_vs_float']:+.2f} points vs float"
    if rec:
        out.append(f"recommended: {rec['format']} ({rec['memory']} bytes): "
                   + (f"{split} {metric} {fmt(rec[sel_key])}, " if both else "")
                   + f"test {metric} {fmt(rec[test_key])}, {vs(rec)}")
    else:
        c = rep["closest"]
        out.append(f"no format stays within {rep['max_loss']:.2f}{unit} of float"
                   + (f"; closest: {c['format']}, {vs(c)}" if c else ""))
    return "\n".join(out)


def train_command(data: str, spec: dict, rounding: str, cfg: dict, stop: dict) -> Optional[str]:
    """The `edgebp train` command that retrains a uniform-format candidate; None for per-layer formats."""
    layers = spec["layers"]
    if len({l["w_frac"] for l in layers}) > 1 or len({l["a_frac"] for l in layers}) > 1:
        return None
    sizes = ",".join(str(s) for s in [spec["n_in"]] + [l["n_out"] for l in layers])
    acts = [l["act"] for l in layers]
    act = acts[0] if len(set(acts)) == 1 else ",".join(acts)
    parts = [f"edgebp train {data} --layers {sizes} --activation {act} --loss {spec['loss']}",
             f"--optimizer {cfg['optimizer']} --lr {cfg['lr']} --momentum {cfg['momentum']}",
             f"--batch-size {cfg['batch_size']} --epochs {stop['epochs']} --seed {cfg['seed']}",
             f"--init {cfg['init']} --init-range {cfg['init_range']}",
             f"--in-frac {spec['in_frac']} --w-frac {layers[0]['w_frac']} --a-frac {layers[0]['a_frac']}",
             f"--rounding {rounding}"]
    if cfg.get("shuffle"):
        parts.append("--shuffle")
    if stop.get("target_loss") is not None:
        parts.append(f"--target-loss {stop['target_loss']}")
    if stop.get("all_correct"):
        parts.append("--all-correct")
    if stop.get("patience") is not None:
        parts.append(f"--patience {stop['patience']}")
    if stop.get("validation_split"):
        parts.append(f"--validation-split {stop['validation_split']}")
    return " ".join(parts) + " --engine fixed"
