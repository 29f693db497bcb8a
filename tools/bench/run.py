#!/usr/bin/env python3
"""Runs the edgebp benchmarks and writes docs/benchmarks.md (the same as `edgebp bench`).

    python tools/bench/run.py            # everything, about 5 minutes
    python tools/bench/run.py --short    # 8-16-2 only, few steps, nothing written
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edgebp.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
