"""Writes the seed corpus of the libFuzzer target (fuzz_app.c's script format): one file per scenario.
    python3 tests/fuzz/make_corpus.py tests/fuzz/corpus"""
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edgebp import protocol as P  # noqa: E402

FRAME, FIXED, RAW, AGAIN = 0, 1, 2, 3
TAGGED = FRAME | 0x10     # a frame with seq 0x7A61: the tag of CHUNK blocks (fuzz_app.c, FUZZ_TAG)


def rec(kind, type_, body=b""):
    return struct.pack("<BBH", kind, type_, len(body)) + bytes(body)


def load_body(n_in=8, sizes=((16, 2), (2, 2)), loss=0, opt=0, rnd=0, flags=2, lr=(52429, -16), mom=0, ik=0):
    # packed by hand: pack_load would refuse the bad values that some seeds carry on purpose
    body = P.LOAD_FIXED.pack(n_in, 12, len(sizes), loss, opt, rnd, flags, lr[0], lr[1], mom, ik, 2048, 5)
    return body + b"".join(P.LAYER.pack(n, a, 12, 12) for n, a in sizes)


def samples(n, n_in, n_out, seed=0):
    r = np.random.default_rng(seed)
    return r.integers(-4096, 4096, (n, n_in)).astype(np.int16), r.integers(0, 4096, (n, n_out)).astype(np.int16)


def ext_loads():
    """LOAD bodies with the protocol-3 extension: frozen layers, int8 weights, a conv1d/pooling network."""
    from edgebp.config import Conv1D, Dense, GlobalAvgPool1D, MaxPool1D, NetSpec, TrainConfig
    from edgebp.fixed import FixedNet
    specs = [(NetSpec.from_sizes([8, 16, 16, 2]).with_trainable_last(1), TrainConfig()),
             (NetSpec.sequential(8, [Dense(16, "tanh", w_bits=8), Dense(2, "sigmoid")]), TrainConfig(seed=2)),
             (NetSpec.sequential((2, 16), [Conv1D(4, 3), MaxPool1D(2), Conv1D(4, 3), GlobalAvgPool1D(),
                                            Dense(2, "softmax")]),
              TrainConfig(optimizer="momentum", momentum=0.5, batch_size=2))]
    return [P.pack_load(FixedNet(spec, cfg).core_params()) for spec, cfg in specs]


def planted_payload() -> bytes:
    """A real checkpoint payload (firmware/app/ckpt.h) of an 8-16-2 network: ebp_cfg_t and ebp_hparams_t as the
    core lays them out, rng and steps, weights and biases."""
    from edgebp._core import ffi
    from edgebp.config import NetSpec, TrainConfig
    from edgebp.fixed import FixedNet
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(seed=3))
    out = bytes(ffi.buffer(fn._cfg)) + bytes(ffi.buffer(ffi.addressof(fn._net, "hp"))) + struct.pack("<II", 77, 5)
    for W, b in fn.get_int_weights():
        out += W.astype("<i2").tobytes() + b.astype("<i2").tobytes()
    return out


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    X, T = samples(6, 8, 2)
    X4, T4 = samples(6, 4, 3, 1)
    seeds = {
        "hello": bytes([0]) + rec(FRAME, P.HELLO),
        "online_train": bytes([1]) + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1)) + rec(AGAIN, 0)
        + rec(FIXED, P.PREDICT, P.pack_predict(X)) + rec(FIXED, P.EVALUATE, P.pack_evaluate(X, T))
        + rec(FRAME, P.READ_WEIGHTS, P.pack_read_weights(1, 0, 100)) + rec(FRAME, P.READ_STATS, b"\x01"),
        "momentum_batches": bytes([3]) + rec(FIXED, P.TRAIN, P.pack_train(X4, T4, 2))
        + rec(FRAME, P.TRAIN, P.pack_train(X4, T4, 6, 1)) + rec(FRAME, P.TRAIN, P.pack_train(X4, T4, 6, 3))
        + rec(FRAME, P.SET_HPARAMS, P.pack_hparams(40000, -17, 1000)) + rec(FRAME, P.READ_STATS, b"\x00"),
        "upload": bytes([5]) + rec(FRAME, P.COMMIT_WEIGHTS, P.pack_commit_weights(0, 3, 9))
        + rec(FIXED, P.PREDICT, P.pack_predict(X)),
        "upload_partial": bytes([1]) + rec(FIXED, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, X.ravel()[:40]))
        + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1))
        + rec(FRAME, P.COMMIT_WEIGHTS, P.pack_commit_weights(1234)),
        "load_variants": bytes([0]) + rec(FRAME, P.LOAD, load_body()) + rec(FRAME, P.LOAD, load_body(ik=9)[:])
        + rec(FRAME, P.LOAD, load_body(n_in=4, sizes=((16, 3), (3, 4)), loss=1, opt=1, rnd=1, flags=0, mom=9000))
        + rec(FRAME, P.LOAD, load_body(sizes=((1024, 2), (1024, 2), (2, 2)))),
        "garbage": bytes([1]) + rec(RAW, 0, b"\x05\x01\x02\x00\x00" + bytes(range(1, 255)) + b"\x00")
        + rec(RAW, 0, b"\x07" * 1100 + b"\x00") + rec(FRAME, 0x42, b"xyz"),
        "upload_commit": bytes([1]) + rec(FIXED, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.arange(144) * 9))
        + rec(FIXED, P.WRITE_WEIGHTS, P.pack_write_weights(1, 0, np.arange(34) - 17))
        + rec(FIXED, P.COMMIT_WEIGHTS, P.pack_commit_weights(0, 77, 5)) + rec(AGAIN, 0)
        + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1)),
        "upload_momentum": bytes([7]) + rec(FIXED, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.arange(80)))
        + rec(FIXED, P.WRITE_WEIGHTS, P.pack_write_weights(1, 0, np.arange(51)))
        + rec(FIXED, P.COMMIT_WEIGHTS, P.pack_commit_weights(0)) + rec(FIXED, P.TRAIN, P.pack_train(X4, T4, 2)),
        "damaged_headers": bytes([1]) + rec(FRAME | 0x20, P.HELLO) + rec(FRAME | 0x40, P.READ_STATS, b"\x00"),
        "checkpoint_cycle": bytes([1]) + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1))
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("save")) + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("autosave", 4))
        + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1)) + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("status"))
        + rec(AGAIN | 4, 0) + rec(FRAME, P.HELLO) + rec(FIXED, P.PREDICT, P.pack_predict(X))
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("damage", 1)) + rec(AGAIN | 4, 0)
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("damage", 0)) + rec(AGAIN | 4, 0)
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("erase")),
        "checkpoint_momentum": bytes([3]) + rec(FIXED, P.TRAIN, P.pack_train(X4, T4, 2))
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("save")) + rec(AGAIN | 4, 0)
        + rec(FIXED, P.TRAIN, P.pack_train(X4, T4, 2)),
        "planted_checkpoint": bytes([8]) + rec(FRAME, 0, planted_payload())
        + rec(FRAME, P.HELLO) + rec(FIXED, P.TRAIN, P.pack_train(X, T, 1)),
        "conv_train": bytes([0]) + rec(FRAME, P.LOAD, ext_loads()[2])
        + rec(FRAME, P.TRAIN, P.pack_train(*samples(4, 32, 2, 3), 2))
        + rec(FRAME, P.PREDICT, P.pack_predict(samples(3, 32, 2, 4)[0]))
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("save")) + rec(AGAIN | 4, 0)
        + rec(FRAME, P.READ_WEIGHTS, P.pack_read_weights(2, 0, 50)),
        "int8_train": bytes([0]) + rec(FRAME, P.LOAD, ext_loads()[1]) + rec(FRAME, P.TRAIN, P.pack_train(X, T, 1))
        + rec(FRAME, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.arange(144) - 70))
        + rec(FRAME, P.WRITE_WEIGHTS, P.pack_write_weights(1, 0, np.arange(34)))
        + rec(FRAME, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.arange(4) * 100)),
        "load_extension": bytes([0]) + b"".join(rec(FRAME, P.LOAD, b) for b in ext_loads())
        + rec(FRAME, P.READ_WEIGHTS, P.pack_read_weights(0, 0, 600)) + rec(FRAME, P.WRITE_WEIGHTS,
                                                                          P.pack_write_weights(0, 0, np.arange(60)))
        + rec(FRAME, P.CHECKPOINT, P.pack_checkpoint("save")) + rec(AGAIN | 4, 0),
        "staged_sample": bytes([0]) + rec(FRAME, P.LOAD, ext_loads()[2])
        + rec(FRAME, P.STAGE, P.pack_stage(0, np.arange(20) * 37)) + rec(AGAIN, 0)
        + rec(FRAME, P.STAGE, P.pack_stage(20, np.arange(6)))
        + rec(FRAME, P.TRAIN, P.pack_staged(P.TRAIN, np.arange(8) * 100, batch=2, flags=1)) + rec(AGAIN, 0)
        + rec(FRAME, P.STAGE, P.pack_stage(0, np.arange(30)))
        + rec(FRAME, P.PREDICT, P.pack_staged(P.PREDICT, np.arange(2)))
        + rec(FRAME, P.STAGE, P.pack_stage(0, np.arange(30)))
        + rec(FRAME, P.EVALUATE, P.pack_staged(P.EVALUATE, np.arange(4)))
        + rec(FRAME, P.STAGE, P.pack_stage(9, np.arange(3)))
        + rec(FRAME, P.TRAIN, P.pack_staged(P.TRAIN, np.arange(34), batch=1))
        + rec(FRAME, P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.arange(10)))
        + rec(FRAME, P.STAGE, P.pack_stage(0, np.arange(3))),
        "pipelined_train": bytes([1]) + rec(FRAME, P.HELLO)
        + rec(FRAME, P.TRAIN, P.pack_train(X[:2], T[:2], 1, P.IN_ORDER))
        + rec(FRAME, P.TRAIN, P.pack_train(X[2:4], T[2:4], 1, P.IN_ORDER)) + rec(AGAIN, 0)
        + rec(FRAME | 0x40, P.READ_STATS, b"\x00")
        + rec(FRAME, P.TRAIN, P.pack_train(X[4:], T[4:], 1, P.IN_ORDER)) + rec(AGAIN, 0)
        + rec(FRAME, P.TRAIN, P.pack_train(X[:0], T[:0], 1, 0))
        + rec(FRAME, P.TRAIN, P.pack_train(X[4:], T[4:], 0, P.IN_ORDER))
        + rec(FRAME, P.TRAIN, P.pack_train(X[4:], T[4:], 1, P.IN_ORDER)),
        "streamed_blocks": bytes([1])
        + rec(TAGGED, P.CHUNK, P.pack_chunk(0, 20, np.concatenate([X[:4].ravel(), T[:4].ravel()])[:20]))
        + rec(TAGGED, P.CHUNK, P.pack_chunk(1, 20, np.concatenate([X[:4].ravel(), T[:4].ravel()])[20:]))
        + rec(FRAME, P.TRAIN, P.pack_train_blocks(4, 1, 0, 0x7A61, 20)) + rec(AGAIN, 0)
        + rec(FRAME, P.TRAIN, P.pack_train_blocks(4, 1, 0, 0x7A61, 20))
        + rec(TAGGED, P.CHUNK, P.pack_chunk(1, 20, np.arange(20)))
        + rec(FRAME, P.TRAIN, P.pack_train_blocks(4, 1, 0, 0x7A61, 7))
        + rec(TAGGED, P.CHUNK, P.pack_chunk(63, 4000, np.arange(4)))
        + rec(FRAME, P.STAGE, P.pack_stage(0, np.arange(4)))
        + rec(FRAME, P.TRAIN, P.pack_train_blocks(4, 1, 0, 0x1234, 20)),
        "state_momentum": bytes([3]) + rec(FIXED, P.TRAIN, P.pack_train(X4, T4, 2))
        + rec(FRAME, P.STATE, P.pack_state_read(0, 100)) + rec(FRAME, P.STATE, P.pack_state_read(40, 0xFFFF))
        + rec(FRAME, P.STATE, P.pack_state_write(0, np.arange(12) * 977)) + rec(AGAIN, 0)
        + rec(FRAME, P.STATE, P.pack_state_write(150, np.arange(3)))
        + rec(FRAME, P.TRAIN, P.pack_train(X4[:1], T4[:1], 6, 1)) + rec(FRAME, P.STATE, P.pack_state_read(0, 4)),
        "resets": bytes([1]) + rec(FRAME, P.RESET, b"\x00") + rec(AGAIN | 4, 0) + rec(FRAME, P.HELLO),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
