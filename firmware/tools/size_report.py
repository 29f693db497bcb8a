#!/usr/bin/env python3
"""Size report of a firmware build: flash, static RAM, worst-case stack, arena. Run by the Makefile.

Stack: GCC's -fcallgraph-info=su writes one .ci file (VCG graph) per object, with every function's frame
size and its calls (avr-gcc 5 has no such option: the report then says n/a, and the JSON's stack is 0 with
stack_method saying why; the device's HELLO reports the painted stack's high-water mark instead). The worst case is the deepest path from the entry point (Reset handler or main). Calls
into functions without stack information (libgcc helpers) count 0 bytes and are listed; indirect calls and
recursion make the figure a lower bound, which the report says. Prints a fixed-format report and writes it
as JSON to <build>/size.json; with --flash-limit it exits 1 when the flash figure exceeds the limit.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

NODE = re.compile(r'node:\s*\{\s*title:\s*"([^"]+)"\s*label:\s*"([^"]*)"')
EDGE = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]+)"\s*targetname:\s*"([^"]+)"')
NO_GRAPH = "n/a (no call graph from avr-gcc 5; see HELLO's painted stack)"
BYTES = re.compile(r'(\d+) bytes \((static|dynamic|dynamic,bounded)\)')


def callgraph(build):
    frames, edges, dynamic = {}, {}, set()
    for ci in glob.glob(os.path.join(build, "**", "*.ci"), recursive=True):
        text = open(ci).read()
        for title, label in NODE.findall(text):
            m = BYTES.search(label.replace("\\n", " "))
            if m:
                frames[title] = int(m.group(1))
                if m.group(2) != "static":
                    dynamic.add(title)
        for s, t in EDGE.findall(text):
            edges.setdefault(s, set()).add(t)
    return frames, edges, dynamic


def worst_stack(root, frames, edges):
    unknown, notes, memo = set(), set(), {}

    def visit(f, path):
        if f in path:
            notes.add("recursion")
            return 0
        if f in memo:
            return memo[f]
        if f == "__indirect_call":
            notes.add("indirect calls")
            return 0
        if f not in frames:
            unknown.add(f)
        best = 0
        for g in edges.get(f, ()):
            best = max(best, visit(g, path | {f}))
        memo[f] = frames.get(f, 0) + best
        return memo[f]

    roots = [t for t in frames if t == root or t.endswith(":" + root)]
    total = max((visit(r, frozenset()) for r in roots), default=0)
    return total, sorted(unknown), sorted(notes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--board", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--size-tool", default="size")
    ap.add_argument("--build", required=True)
    ap.add_argument("--arena", type=int, required=True)
    ap.add_argument("--root", default="main")
    ap.add_argument("--flash-limit", type=int, default=None,
                    help="fail (exit 1) when flash exceeds this many bytes (the part's flash less its bootloader)")
    a = ap.parse_args(argv)
    out = subprocess.run([a.size_tool, "-A", a.elf], check=True, capture_output=True, text=True).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].isdigit() and parts[0].startswith("."):
            sections[parts[0]] = int(parts[1])
    if a.root == "main":      # a native process: text and rodata are its "flash"
        flash = sum(v for k, v in sections.items() if k in (".text", ".rodata", ".data", ".init", ".fini",
                                                               ".plt", ".eh_frame", ".init_array"))
    else:
        flash = sum(v for k, v in sections.items() if k in (".text", ".ARM.exidx", ".data"))
    ram = sections.get(".data", 0) + sections.get(".bss", 0)
    frames, edges, dynamic = callgraph(a.build)
    stack, unknown, notes = worst_stack(a.root, frames, edges)
    max_frame_fn = max(frames, key=frames.get) if frames else ""
    no_graph = not frames      # avr-gcc 5 has no -fcallgraph-info: no frame sizes at all
    rep = {
        "board": a.board, "elf": a.elf, "flash": flash, "ram": ram, "ram_without_arena": ram - a.arena,
        "arena": a.arena, "stack": stack,      # 0 without a call graph (stack_method says so)
        "stack_method": NO_GRAPH if no_graph else f"call-graph worst case from {a.root}",
        "flash_limit": a.flash_limit,
        "stack_max_frame": frames.get(max_frame_fn, 0), "stack_max_frame_function": max_frame_fn,
        "stack_unknown_callees": unknown, "stack_notes": notes + (["dynamic frames"] if dynamic else []),
    }
    print(f"size report for {a.board} ({os.path.relpath(a.elf)})")
    print(f"  flash: {flash} bytes (code + constants + .data image)")
    print(f"  ram:   {ram} bytes static (.data + .bss), of which arena {a.arena} bytes; "
          f"{ram - a.arena} bytes without the arena")
    if a.flash_limit is not None:
        print(f"         limit {a.flash_limit} bytes: " + ("ok" if flash <= a.flash_limit else
                                                          f"OVER by {flash - a.flash_limit} bytes"))
    if no_graph:
        print(f"  stack: {NO_GRAPH}")
    else:
        print(f"  stack: {stack} bytes ({rep['stack_method']}; largest frame {rep['stack_max_frame']} bytes in "
              f"{max_frame_fn})" + (f"; lower bound: {', '.join(rep['stack_notes'])}" if rep["stack_notes"] else ""))
    if unknown and a.root != "main" and not no_graph:     # a native build calls libc, whose frames are not listed
        print(f"         callees without stack data counted as 0: {', '.join(unknown)}")
    print(f"  arena: {a.arena} bytes offered to ebp_net_init")
    with open(os.path.join(a.build, "size.json"), "w") as f:
        json.dump(rep, f, indent=1)
    if a.flash_limit is not None and flash > a.flash_limit:
        print(f"error: {a.board}: {flash} bytes of flash, more than the {a.flash_limit} the part holds for the "
              f"firmware; see firmware/README.md for what to switch off", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
