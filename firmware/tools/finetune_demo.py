"""Transfer learning on an emulated board: pretrain 8-16-16-2 on the host on the first half of diabetes'
training set, load it onto the device, fine-tune there on the second half (only the last layer, or every
layer), and print test accuracy before and after, the device's training memory and its instructions per step,
each run checked bit for bit against FixedNet on the host.

    PYTHONPATH=. python3 firmware/tools/finetune_demo.py --board qemu-microbit [--pre-epochs 50] [--epochs 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edgebp.boards import start_emulator  # noqa: E402
from edgebp.config import NetSpec, TrainConfig  # noqa: E402
from edgebp.data import load_dataset  # noqa: E402
from edgebp.deploy import write_weights  # noqa: E402
from edgebp.device import Device  # noqa: E402
from edgebp.fixed import FixedNet  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="qemu-microbit")
    ap.add_argument("--pre-epochs", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.2)
    args = ap.parse_args(argv)
    ds = load_dataset("diabetes")
    half = len(ds.X_train) // 2
    spec = NetSpec.from_sizes([8, 16, 16, 2])
    base = FixedNet(spec, TrainConfig(lr=args.lr, seed=1))
    Xa, Ta = base.quantize_inputs(ds.X_train[:half]), base.quantize_targets(ds.T_train[:half])
    for _ in range(args.pre_epochs):
        base.train_q(Xa, Ta, 1)
    Xt, Tt = base.quantize_inputs(ds.X_test), base.quantize_targets(ds.T_test)
    before = base.evaluate_q(Xt, Tt)[1] / len(Xt)
    Xb, Tb = base.quantize_inputs(ds.X_train[half:]), base.quantize_targets(ds.T_train[half:])
    rows = []
    with start_emulator(args.board, timeout=3600) as url, Device(url, timeout=30.0) as dev:
        for label, s in (("last layer", spec.with_trainable_last(1)), ("all layers", spec)):
            cfg = TrainConfig(lr=args.lr, seed=2)
            host = FixedNet(s, cfg)
            host.set_int_weights(base.get_int_weights())
            mem = dev.load_model(host)
            write_weights(dev, base.get_int_weights())
            ticks = steps = 0
            for _ in range(args.epochs):
                r = dev.train(Xb, Tb, 1)
                host.train_q(Xb, Tb, 1)
                ticks, steps = ticks + r.ticks, steps + r.steps_taken
            same = all(np.array_equal(a, b) for (W1, b1), (W2, b2) in zip(dev.read_weights(), host.get_int_weights())
                       for a, b in ((W1, W2), (b1, b2)))
            loss, correct = dev.evaluate(Xt, Tt)
            assert (loss, correct) == host.evaluate_q(Xt, Tt)
            ipstep = dev.board_info.ticks_to(ticks) / steps if dev.board_info.ticks_to(1) is not None else None
            rows.append((label, correct / len(Xt), mem["total"], ipstep, same))
    print(f"diabetes 8-16-16-2 on {args.board}: pretrained on the host ({args.pre_epochs} epochs on {half} samples), "
          f"fine-tuned on the device ({args.epochs} epochs on {len(Xb)} other samples), online SGD lr {args.lr}")
    print(f"test accuracy before fine-tuning (host): {before:.2%}")
    print(f"{'trained':12} {'test acc':>9} {'RAM (bytes)':>12} {'instr/step':>11}  bit-identical to the host")
    for label, acc, ram, ips, same in rows:
        print(f"{label:12} {acc:>9.2%} {ram:>12} {ips if ips is None else round(ips):>11}  {'yes' if same else 'NO'}")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
