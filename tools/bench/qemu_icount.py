#!/usr/bin/env python3
"""Instructions per LSGM score on aarch64 and armv7, counted under qemu-user.

Emulated seconds say nothing about a Raspberry Pi, but the number of guest
instructions a score executes is a property of the compiled code. qemu-user
has no instruction counter, so this runs `examples/score_repeat` with
`-d in_asm,exec,nochain`: every translated block is logged once with its
instructions ("IN:" listings) and, with chaining off, every execution of a
block is logged ("Trace" lines). Summing the size of each executed block gives
the instruction count. Two runs (N1 and N2 scores) cancel start-up and model
validation: per score = (I(N2) - I(N1)) / (N2 - N1).

    cargo build --release --example score_repeat --no-default-features --features std \\
        --target aarch64-unknown-linux-gnu        # and armv7-unknown-linux-gnueabihf
    python3 tools/bench/qemu_icount.py [MODEL.lsgm ...]

Reads target/cross/<target>/release/examples/score_repeat (CARGO_TARGET_DIR
target/cross, as .ci/run uses) or target/<target>/...; the x86-64 row counts
the host build (target/release/examples/score_repeat) under qemu-x86_64.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = {
    "aarch64-unknown-linux-gnu": ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
    "armv7-unknown-linux-gnueabihf": ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf"],
    # The host build, counted the same way, for comparison.
    "x86_64 (host build)": ["qemu-x86_64"],
}
N1, N2 = 1, 6
INSN = re.compile(r"^0x([0-9a-f]+):\s")
TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def binary(target):
    if target.startswith("x86_64"):
        p = os.path.join(ROOT, "target", "release", "examples", "score_repeat")
        return p if os.path.exists(p) else None
    for d in ("target/cross", "target"):
        p = os.path.join(ROOT, d, target, "release", "examples", "score_repeat")
        if os.path.exists(p):
            return p
    return None


def count(runner, exe, model, n):
    """Guest instructions executed by `exe model n` under qemu-user."""
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        subprocess.run(runner + ["-d", "in_asm,exec,nochain", "-D", log.name, exe, model, str(n)],
                       check=True, stdout=subprocess.DEVNULL)
        sizes, total, block, start = {}, 0, 0, None
        with open(log.name, errors="replace") as f:
            for line in f:
                if line.startswith("IN:"):
                    block, start = 0, None
                elif INSN.match(line):
                    if start is None:
                        start = int(INSN.match(line).group(1), 16)
                    block += 1
                elif line.startswith("Trace"):
                    if start is not None:
                        sizes[start] = block  # the latest translation of this pc
                        start = None
                    pc = int(TRACE.match(line).group(1), 16)
                    total += sizes.get(pc, 0)
        return total


def main():
    models = sys.argv[1:] or [os.path.join(ROOT, "models", m)
                              for m in ("fmnist-resnet.lsgm", "fmnist-resnet-i8.lsgm")]
    print("| model | target | instructions per score |")
    print("|---|---|---|")
    for model in models:
        name = os.path.basename(model)
        for target, runner in TARGETS.items():
            exe = binary(target)
            if exe is None:
                print(f"| {name} | {target} | not built |")
                continue
            a, b = count(runner, exe, model, N1), count(runner, exe, model, N2)
            print(f"| {name} | {target} | {(b - a) / (N2 - N1):,.0f} |")


if __name__ == "__main__":
    main()
