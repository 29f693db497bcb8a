"""`edgebp bench`: the benchmarks of docs/benchmarks.md (edgebp/bench.py)."""
from __future__ import annotations


def add_bench_commands(subparsers) -> None:
    """Adds `edgebp bench` to the CLI's subparsers."""
    from . import bench
    p = subparsers.add_parser("bench", help="instructions per step on emulated Cortex-M3/M4/M0, host speed vs float "
                                            "and PyTorch, memory, serial throughput; writes docs/benchmarks.md")
    bench.add_arguments(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from . import bench
    return bench.run_from_args(args, "edgebp bench")
