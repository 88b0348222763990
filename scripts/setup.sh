#!/usr/bin/env bash
# scripts/setup.sh — install the build dependencies from Debian packages (idempotent: installs only what is missing).
#   cmake, libfmt-dev, doctest-dev, libcxxopts-dev, libstb-dev. The CUDA toolkit (nvcc, cuBLAS) and cuDNN are
#   expected under /usr/local/cuda (or system-wide); without nvcc the build is CPU-only.
set -euo pipefail
pkgs=(cmake libfmt-dev doctest-dev libcxxopts-dev libstb-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present (${pkgs[*]})"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
