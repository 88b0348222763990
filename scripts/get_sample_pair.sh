#!/usr/bin/env bash
# scripts/get_sample_pair.sh — fetch the Middlebury 2014 "Motorcycle" stereo pair with its ground truth, as shipped by
# scikit-image (skimage.data.stereo_motorcycle), from Debian's python3-skimage package. Nothing is installed: the
# .deb is downloaded with `apt-get download` into a temporary folder and unpacked there with `dpkg -x`.
#
#   scripts/get_sample_pair.sh [OUT_DIR]        (default: <checkout>/data/motorcycle)
#   SKIMAGE_DEB=/path/python3-skimage_*.deb scripts/get_sample_pair.sh   (use a .deb you already have)
#
# Writes OUT_DIR/im0.png, im1.png (741x500 RGB, the benchmark's images down-sampled 4x), disp0.npz (as shipped:
# arr_0, float32 (500, 741), inf where unknown) and calib.txt (Middlebury layout, values from skimage's docstring:
# f 994.978 px, cx 311.193, cy 254.877, doffs 31.086, baseline 193.001 mm). Exit status 0 on success, 1 on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$(cd "$here/.." && pwd)/data/motorcycle}"
# Known content of the skimage 0.19 data files (the files have not changed since 2016); a mismatch is only a warning.
declare -A sha=(
  [motorcycle_left.png]=db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179
  [motorcycle_right.png]=5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797
  [motorcycle_disp.npz]=2e49c8cebff3fa20359a0cc6880c82e1c03bbb106da81a177218281bc2f113d7
)

tmp="$(mktemp -d /tmp/stereort-skimage.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

if [[ -n "${SKIMAGE_DEB:-}" ]]; then
  deb="$SKIMAGE_DEB"
else
  command -v apt-get >/dev/null || { echo "get_sample_pair: apt-get not found (Debian/Ubuntu needed, or set SKIMAGE_DEB)" >&2; exit 1; }
  echo "get_sample_pair: downloading python3-skimage (about 20 MB) into $tmp"
  if ! (cd "$tmp" && apt-get download python3-skimage >"$tmp/apt.log" 2>&1); then
    cat "$tmp/apt.log" >&2
    echo "get_sample_pair: 'apt-get download python3-skimage' failed (no network or package index? try apt-get update)" >&2
    exit 1
  fi
  deb="$(ls "$tmp"/python3-skimage_*.deb)"
fi
dpkg -x "$deb" "$tmp/x"
data="$(find "$tmp/x" -type d -path '*skimage/data' | head -n 1)"
if [[ -z "$data" || ! -f "$data/motorcycle_left.png" || ! -f "$data/motorcycle_disp.npz" ]]; then
  echo "get_sample_pair: $deb does not ship skimage/data/motorcycle_*; newer scikit-image versions download it on" \
       "demand instead — use a Debian 12 (bookworm) python3-skimage .deb via SKIMAGE_DEB" >&2
  exit 1
fi
for f in "${!sha[@]}"; do
  got="$(sha256sum "$data/$f" | cut -d' ' -f1)"
  [[ "$got" == "${sha[$f]}" ]] || echo "get_sample_pair: warning: $f has sha256 $got, expected ${sha[$f]}" >&2
done

# Calibration from the docstring of skimage.data.stereo_motorcycle (values for the down-sampled images).
fetchers="$(find "$tmp/x" -path '*skimage/data/_fetchers.py' | head -n 1)"
value() { grep -m1 "$1" "$fetchers" | sed -E 's/.*:[[:space:]]*([0-9.]+).*/\1/'; }
f="$(value 'Focal length:')"; cx="$(value 'Principal point x:')"; cy="$(value 'Principal point y:')"
doffs="$(value 'Principal point dx:')"; baseline="$(value 'Baseline:')"
if [[ -z "$f" || -z "$cx" || -z "$cy" || -z "$doffs" || -z "$baseline" ]]; then
  f=994.978; cx=311.193; cy=254.877; doffs=31.086; baseline=193.001
  echo "get_sample_pair: warning: calibration not found in the docstring; using the skimage 0.19 values" >&2
fi
cx1="$(awk -v a="$cx" -v b="$doffs" 'BEGIN { printf "%.3f", a + b }')"

stage="$out.tmp-$$"
rm -rf "$stage"
mkdir -p "$stage"
cp "$data/motorcycle_left.png" "$stage/im0.png"
cp "$data/motorcycle_right.png" "$stage/im1.png"
cp "$data/motorcycle_disp.npz" "$stage/disp0.npz"
cat >"$stage/calib.txt" <<CALIB
# Middlebury 2014 Motorcycle, down-sampled 4x by scikit-image; from the skimage.data.stereo_motorcycle docstring
cam0=[$f 0 $cx; 0 $f $cy; 0 0 1]
cam1=[$f 0 $cx1; 0 $f $cy; 0 0 1]
doffs=$doffs
baseline=$baseline
width=741
height=500
CALIB
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$stage" "$out"
echo "get_sample_pair: wrote $out/{im0.png,im1.png,disp0.npz,calib.txt}"
