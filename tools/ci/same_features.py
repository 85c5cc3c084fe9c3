#!/usr/bin/env python3
"""Fails when two cargo selections would build a shared dependency with
different features — the cause of a second compile of tract.

Cargo enables a dependency's features from the packages a command selects
(and, for tests, their dev-dependencies). When `cargo run --bin lsgm-monitor`
and `cargo test --workspace` end up asking different features of a crate
that tract depends on (matrixmultiply's `avx512`, rustix's `default`), the
test command recompiles tract and everything above it: minutes on a fresh
clone. The pins in Cargo.toml prevent that; this script keeps them right
by comparing, with `cargo tree` (no build needed), the features every crate
gets under each selection against the full test build's.

    python3 tools/ci/same_features.py        # exit 1 and a list when they differ

Selections compared with `cargo test --workspace`:
    cargo run --bin lsgm-monitor       (lsgm's normal dependencies)
    cargo run -p fit-and-export        (fit-and-export's normal dependencies)
    cargo test -p lsgm [--test T]      (lsgm with its dev-dependencies)
    cargo test -p fit-and-export       (fit-and-export with its dev-dependencies)
    maturin build                      (the Python package's crate, bindings/python)
A crate missing from a selection is fine (it is not built there); a crate
built with other features is not.
"""
import collections
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

SELECTIONS = {
    "cargo run --bin lsgm-monitor": ["-p", "lsgm", "-e", "normal,build"],
    "cargo run -p fit-and-export": ["-p", "fit-and-export", "-e", "normal,build"],
    "cargo test -p lsgm": ["-p", "lsgm", "-e", "normal,build,dev"],
    "cargo test -p fit-and-export": ["-p", "fit-and-export", "-e", "normal,build,dev"],
    "maturin build (bindings/python)": ["-p", "lsgm-python", "-e", "normal,build"],
}
REFERENCE = ("cargo test --workspace", ["--workspace", "-e", "normal,build,dev"])


def features(args):
    """{package id: set of enabled features} under a `cargo tree` selection."""
    run = subprocess.run(
        ["cargo", "tree", "--locked", "-e", "features", "--prefix", "none", "-f", "{p}|{f}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        sys.exit(f"cargo tree {' '.join(args)} failed:\n{run.stderr}")
    out = run.stdout
    enabled = collections.defaultdict(set)
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, names = line.split("|", 1)
        package = package.replace("(*)", "").strip()
        enabled[package].update(n for n in names.replace("(*)", "").strip().split(",") if n)
    return enabled


def main():
    reference = features(REFERENCE[1])
    differences = []
    for name, args in SELECTIONS.items():
        for package, enabled in sorted(features(args).items()):
            if package in reference and enabled != reference[package]:
                differences.append(
                    f"{name}: {package} without {sorted(reference[package] - enabled)}"
                    f" / with {sorted(enabled - reference[package])} against {REFERENCE[0]}"
                )
    if differences:
        print("these selections would compile a dependency a second time:", file=sys.stderr)
        for d in differences:
            print("  " + d, file=sys.stderr)
        print(
            "name the missing features in the selection's Cargo.toml (see the pins beside "
            "`matrixmultiply` in the root Cargo.toml)",
            file=sys.stderr,
        )
        return 1
    print(f"same features under {len(SELECTIONS)} selections and {REFERENCE[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
