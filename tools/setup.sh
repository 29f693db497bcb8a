#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine: the tools the tests and `make demo` use (apt), and edgebp
# itself with its test dependencies (pip, editable, so the C core is built in place).
#   apt: Arm cross compiler + newlib, QEMU, make, valgrind (bench), cmake (the CMake library tests), clang and
#        its libFuzzer runtime (the firmware fuzz target), gcovr (C coverage), simavr + avr-gcc + avr-libc (AVR
#        runs) and libsimavr-dev + libsimavrparts1 (the simavr-atmega328p board's runner links against them),
#        arduino-builder + the Arduino AVR core + arduino-ctags (the Arduino library build)
#   pip: edgebp[test,fleet] (pytest, hypothesis, scikit-learn, scipy, matplotlib, rich, build; Flower + Ray) and
#        platformio (its manifest schema checks library.json)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
have() { command -v "$1" >/dev/null; }
have arm-none-eabi-gcc || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
have qemu-system-arm || need+=(qemu-system-arm)
have make || need+=(make)
have cc || need+=(gcc)
have valgrind || need+=(valgrind)                     # instruction counts in edgebp bench
have cmake || need+=(cmake)                           # tests/test_cmake.py
have clang || need+=(clang)                           # firmware fuzz target (libFuzzer)
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null || {
    v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    need+=("libclang-rt-${v:-14}-dev")
}
have gcovr || need+=(gcovr)                           # C line/branch coverage
have simavr || need+=(simavr)
have avr-gcc || need+=(gcc-avr avr-libc)
[ -f /usr/include/simavr/sim_avr.h ] || need+=(libsimavr-dev libsimavrparts1)   # simavr-atmega328p's runner
have arduino-builder || need+=(arduino-builder)       # tests/test_manifests.py
have arduino-ctags || need+=(arduino-ctags)
[ -f /usr/share/arduino/hardware/arduino/avr/boards.txt ] || need+=(arduino-core-avr)
if ((${#need[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${need[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test,fleet]"
python3 -c "import platformio" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check platformio
