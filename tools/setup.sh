#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine: the Arm cross compiler and QEMU (apt), and edgebp
# itself with its test dependencies (pip, editable, so the C core is built in place).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v make >/dev/null || need+=(make)
command -v valgrind >/dev/null || need+=(valgrind)   # instruction counts in edgebp bench
if ((${#need[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${need[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
