#!/usr/bin/env bash
# tests/cli_infer_test.sh — `stereort infer` end to end (CTest: cli_infer): the Motorcycle pair (741x500, not a
# multiple of 32) writes every output at the input's size; bad inputs give one clear error line, a non-zero exit and
# no output. Usage: cli_infer_test.sh <stereort binary> <source dir>
set -u
bin=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

data="$src/data/motorcycle"
if [ ! -f "$data/im0.png" ]; then
  bash "$src/scripts/get_sample_pair.sh" >/dev/null 2>&1 || { echo "skipped: could not fetch the Motorcycle pair"; exit 0; }
fi
model=stereomamba-tiny
[ -f "$src/models/weights/stereomamba-tiny-demo.safetensors" ] && weights=(--weights "$src/models/weights/stereomamba-tiny-demo.safetensors") || weights=()

# 1. the real pair, any size: outputs at 741x500
"$bin" infer --left "$data/im0.png" --right "$data/im1.png" --model $model "${weights[@]}" --device cpu \
  --out "$work/out" --focal 994.978 --baseline 193.001 --doffs 31.086 2>"$work/log"
rc=$?
cat "$work/log"
check "infer exits 0" "[ $rc -eq 0 ]"
for f in im0_disp.pfm im0_disp.png im0_disp_color.png im0.ply; do check "wrote $f" "[ -s '$work/out/$f' ]"; done
check "PFM is 741x500" "head -c 40 '$work/out/im0_disp.pfm' | sed -n 2p | grep -qx '741 500'"
check "PNGs are 741x500" "python3 - '$work/out' <<'PY'
import struct, sys
for n in ('im0_disp.png', 'im0_disp_color.png'):
    b = open(sys.argv[1] + '/' + n, 'rb').read(24)
    w, h = struct.unpack('>II', b[16:24])
    assert (w, h) == (741, 500), (n, w, h)
PY"

# 2. bad inputs: one error line, non-zero exit, nothing written
bad() {  # name, expected substring, args...
  local name=$1 want=$2; shift 2
  rm -rf "$work/bad"
  "$bin" infer --model $model --device cpu --out "$work/bad" "$@" >"$work/o" 2>"$work/e"
  local rc=$?
  check "$name: non-zero exit" "[ $rc -ne 0 ]"
  check "$name: one error line naming the problem" "[ \$(grep -c . '$work/e') -eq 1 ] && grep -q '$want' '$work/e'"
  check "$name: nothing written" "[ ! -e '$work/bad' ]"
  sed 's/^/    /' "$work/e"
}
bad "missing file" "does not exist" --left "$work/nope.png" --right "$data/im1.png"
python3 - "$data/im1.png" "$work/small.png" <<'PY'
import sys, zlib, struct
# a valid 8x8 grey PNG, so only the size differs
raw = b''.join(b'\x00' + bytes(8) for _ in range(8))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[2], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 8, 8, 0, 0, 0, 0)) +
                              chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
PY
bad "views of different sizes" "differ in size" --left "$data/im0.png" --right "$work/small.png"
printf 'not a safetensors file at all' > "$work/corrupt.safetensors"
bad "corrupt weights" "corrupt.safetensors" --left "$data/im0.png" --right "$data/im1.png" --weights "$work/corrupt.safetensors"
python3 - "$work/other.safetensors" <<'PY'
import json, struct, sys
hdr = json.dumps({"__metadata__": {"arch": "raft-stereo"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
hdr += b' ' * (-len(hdr) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + bytes(8))
PY
bad "weights of another model" "not StereoMamba" --left "$data/im0.png" --right "$data/im1.png" --weights "$work/other.safetensors"
exit $fail
