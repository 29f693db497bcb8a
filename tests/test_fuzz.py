"""The libFuzzer target (tests/fuzz/fuzz_app.c: the firmware's byte handler with the core, ASan + UBSan) runs
for a bounded time from the committed corpus and must find nothing. `make -C tests/fuzz fuzz-long` runs it for
hours; `make -C tests/fuzz coverage` reports the lines and branches the corpus reaches."""
import re
import subprocess
from pathlib import Path

from toolcheck import need_tools

FUZZ = Path(__file__).resolve().parent / "fuzz"
SECONDS = 40


def test_fuzz_target_finds_nothing(tmp_path):
    need_tools("clang", "make")
    build = subprocess.run(["make", "-s", "-C", str(FUZZ)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = sorted((FUZZ / "corpus").iterdir())
    assert len(seeds) >= 8, "the seed corpus is missing: make -C tests/fuzz corpus"
    p = subprocess.run([str(FUZZ / "build" / "fuzz_app"), f"-max_total_time={SECONDS}", "-print_final_stats=1",
                        "-max_len=4096", "-rss_limit_mb=1024", f"-artifact_prefix={tmp_path}/", str(corpus),
                        str(FUZZ / "corpus")], capture_output=True, text=True, timeout=SECONDS + 120)
    findings = [f.name for f in tmp_path.iterdir() if f.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert p.returncode == 0 and not findings, f"fuzzer finding {findings}:\n{p.stderr[-4000:]}"
    runs = int(re.search(r"stat::number_of_executed_units:\s+(\d+)", p.stderr).group(1))
    assert runs > 10000, p.stderr[-2000:]     # it really ran (about 5,000-7,000 inputs per second here)
