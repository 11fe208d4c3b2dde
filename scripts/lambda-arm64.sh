#!/usr/bin/env bash
# arm64 (Graviton) builds of keyrotor's Lambda functions without rustup's aarch64 target,
# which cannot be downloaded here: Debian bookworm-security's rustc-web (1.96, >= our
# rust-version 1.95) and its aarch64 standard library through multiarch, linked with
# Debian's cross gcc. Prints each function's stripped size and its zip as `bootstrap`
# (deflate -9) and the newest glibc symbol version it needs (provided.al2023 has 2.34).
#
# One-time set-up (root; the script does it when it is missing):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install --no-install-recommends rustc-web libstd-rust-web-dev:arm64 \
#     gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# Usage: scripts/lambda-arm64.sh        (KEYROTOR_NO_BUILD=1: sizes of an existing build)
#   KEYROTOR_ARM64_RUSTC (default /usr/bin/rustc): the rustc that has the aarch64 std.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
rustc=${KEYROTOR_ARM64_RUSTC:-/usr/bin/rustc}
# A target directory of its own: another rustc must not invalidate target/release.
export CARGO_TARGET_DIR=target/debian-cross
out=$CARGO_TARGET_DIR/$target/release
functions=(keyrotor-plan keyrotor-iam-keys keyrotor-certs keyrotor-migration keyrotor-api-key
  keyrotor-record-failure keyrotor-secret-rotation)

ready() {
  [[ -x $rustc ]] && [[ -d $("$rustc" --print sysroot)/lib/rustlib/$target/lib ]] &&
    command -v aarch64-linux-gnu-gcc >/dev/null
}
if ! ready; then
  # The set-up of the header, done here when it is missing (Debian's packages, as root).
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  echo "lambda-arm64: installing rustc-web, its aarch64 std and the aarch64 cross gcc (apt)" >&2
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross >&2
fi
ready || { echo "lambda-arm64: $rustc with the $target standard library and aarch64-linux-gnu-gcc are needed (see the header)" >&2; exit 1; }
echo "rustc: $("$rustc" --version)" >&2

if [[ ${KEYROTOR_NO_BUILD:-} != 1 ]]; then
  bins=()
  for f in "${functions[@]}"; do bins+=(--bin "$f"); done
  RUSTC=$rustc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    nice -n "${KEYROTOR_BUILD_NICE:-15}" cargo build --quiet --release --target "$target" "${bins[@]}"
fi

for f in "${functions[@]}"; do
  file -b "$out/$f" | cut -d, -f1-2 | sed "s|^|$f: |"
  echo "$f: needs $(aarch64-linux-gnu-objdump -T "$out/$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
done >&2
python3 scripts/cold_start.py --bin-dir "$out" --strip aarch64-linux-gnu-strip --arch arm64 \
  --out .keyrotor/cold-start --functions "${functions[@]}"
