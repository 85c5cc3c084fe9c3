#!/usr/bin/env bash
# Board binaries: stripped release builds of `lsgm-monitor` and
# `fit-and-export` that run on glibc 2.27 and later (Ubuntu 18.04 / JetPack 4,
# Raspberry Pi OS Buster and Bullseye, Debian 10+), one folder per target:
#
#     dist/aarch64-unknown-linux-gnu/     Pi 4/5 with a 64-bit OS, Jetson
#     dist/armv7-unknown-linux-gnueabihf/ 32-bit Raspberry Pi OS
#     dist/x86_64-unknown-linux-gnu/      x86-64 hosts and boxes
#
# usage: tools/boards/build.sh [TARGET …]     (default: all three)
#
# How: cargo-zigbuild links against glibc 2.27's symbol versions with zig's
# bundled C toolchain (target `T.2.27`), so the binary asks for nothing newer
# than GLIBC_2.27 whatever the build machine's glibc is; then every binary's
# highest required GLIBC_ version is read back (readelf) and the script fails
# if one needs more. Why glibc and not static musl: on x86-64 the musl build
# ran the demo at 0.58x the frames/s of the glibc build (musl's allocator and
# memcpy), for the same size, and Rust's armv7 musl target is not installable
# here — docs/boards.md has the measurement.
#
# Needs: zig (`pip install ziglang`) and cargo-zigbuild (`cargo install --locked
# cargo-zigbuild`); `rustup target add` for each target. .ci/run installs them.
# Profile `dist` (Cargo.toml): release with symbols stripped.
set -euo pipefail
cd "$(dirname "$0")/../.."

GLIBC=2.27
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-unknown-linux-gnu)
bins=(lsgm-monitor fit-and-export)

fail() { echo "tools/boards/build.sh: $*" >&2; exit 1; }
command -v cargo-zigbuild >/dev/null || fail "cargo-zigbuild is not installed: cargo install --locked cargo-zigbuild"
command -v zig >/dev/null || python3 -m ziglang version >/dev/null 2>&1 \
  || fail "zig is not installed: pip install ziglang (or put zig on PATH)"

# The highest GLIBC_x.y version a binary's dynamic symbols need (readelf reads
# any architecture's ELF), or "none" for a static binary.
highest_glibc() {
  readelf -V --wide "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n 1 \
    | grep . || echo none
}

# True when version $1 ≤ $2 (both x.y[.z]).
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$1" ]; }

for t in "${targets[@]}"; do
  case "$t" in
    aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf | x86_64-unknown-linux-gnu) ;;
    *) fail "unknown target $t (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf, x86_64-unknown-linux-gnu)" ;;
  esac
  rustup target list --installed | grep -qx "$t" || fail "Rust target $t is not installed: rustup target add $t"
  echo "== $t (glibc ≥ $GLIBC)" >&2
  cargo zigbuild --locked --profile dist --target "$t.$GLIBC" -p lsgm -p fit-and-export --bins
  out="dist/$t"
  mkdir -p "$out"
  for b in "${bins[@]}"; do
    # Copy, then rename: a half-written binary never sits in dist/.
    cp "target/$t/dist/$b" "$out/.$b.tmp"
    mv -f "$out/.$b.tmp" "$out/$b"
    need=$(highest_glibc "$out/$b")
    if [ "$need" != none ] && ! version_le "$need" "$GLIBC"; then
      fail "$out/$b needs GLIBC_$need, newer than $GLIBC"
    fi
    printf '%s\t%s bytes\tneeds GLIBC_%s\n' "$out/$b" "$(stat -c %s "$out/$b")" "$need"
  done
done
