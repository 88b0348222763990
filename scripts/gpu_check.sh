#!/usr/bin/env bash
# scripts/gpu_check.sh — the GPU machine's check: configure Release for sm_90, build with -j16, run every test
# (GPU ones included), run every benchmark program, write logs under $OUT and print a summary.
#   Expects the stb headers in .stb/ and the golden tensors in .golden/ (both git-ignored; the device call carries
#   them). Usage: bash scripts/gpu_check.sh [--no-bench] [--no-model-bench] [--no-tests] [--tests SRCPATTERN]
#   [--tc CASEPATTERN] [--bench REGEX] [--targets "T1 T2"]   (--targets: build only these CMake targets)
set -uo pipefail
OUT=${OUT:-/tmp/stereort-gpu-out}
mkdir -p "$OUT"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
run_tests=1; bench=1; tests_filter=""; tc_filter=""; bench_filter="."; model_bench=1; targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-bench) bench=0; model_bench=0 ;;
    --no-tests) run_tests=0 ;;
    --no-model-bench) model_bench=0 ;;
    --tests) tests_filter="$2"; shift ;;
    --tc) tc_filter="$2"; shift ;;
    --bench) bench_filter="$2"; shift ;;
    --targets) targets="$2"; shift ;;
  esac
  shift
done
B=build-gpu
start=$(date +%s)
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSTEREORT_CUDA=ON \
  -DSTEREORT_STB_DIR="$root/.stb" -DSTEREORT_GOLDEN_DIR="$root/.golden" >"$OUT/build.log" 2>&1 || {
  echo "configure FAILED"; tail -30 "$OUT/build.log"; exit 1; }
targs_build=()
[ -n "$targets" ] && targs_build=(--target $targets)
if ! cmake --build $B -j16 "${targs_build[@]}" >>"$OUT/build.log" 2>&1; then
  echo "build FAILED"; grep -E "error|Error" "$OUT/build.log" | head -40; exit 1
fi
echo "build: $(( $(date +%s) - start )) s"
./$B/stereort info | tee "$OUT/info.log"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv >>"$OUT/info.log" 2>&1

trc=0
if [ $run_tests -eq 1 ]; then
  targs=()
  [ -n "$tests_filter" ] && targs=(--source-file="$tests_filter")
  [ -n "$tc_filter" ] && targs+=(-tc="$tc_filter")
  t0=$(date +%s)
  if [ ${#targs[@]} -gt 0 ]; then
    ./$B/tests/stereort_tests "${targs[@]}" --no-intro >"$OUT/tests.log" 2>&1
    trc=$?
  else
    # every test file in its own process, 12 at a time (the float64 CPU tests are single-threaded; one process for
    # the whole suite takes ~6.5 min on the GPU machine), then one log and one summary over all files
    mkdir -p "$OUT/tests"
    ls tests/test_*.cpp | xargs -n1 basename | grep -v -e '^test_main.cpp$' -e '^test_util.cpp$' |
      xargs -P 12 -I{} sh -c "./$B/tests/stereort_tests --source-file='*/{}' --no-intro >'$OUT/tests/{}.log' 2>&1; echo \$? >'$OUT/tests/{}.rc'"
    : >"$OUT/tests.log"
    for f in "$OUT"/tests/*.log; do echo "### $(basename "$f" .log)" >>"$OUT/tests.log"; cat "$f" >>"$OUT/tests.log"; done
    trc=0
    for f in "$OUT"/tests/*.rc; do
      if [ "$(cat "$f")" != 0 ]; then trc=1; echo "FAILED: $(basename "$f" .rc)"; fi
    done
    awk '/test cases:/ {for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }}
         END { printf "[all files] test cases: %d | %d passed | %d failed\n", p + f, p, f }' "$OUT"/tests/*.log
    awk '/assertions:/ {for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }}
         END { printf "[all files] assertions: %d | %d passed | %d failed\n", p + f, p, f }' "$OUT"/tests/*.log
    rm -rf "$OUT/tests"  # everything is in tests.log
  fi
  echo "tests: rc=$trc, $(( $(date +%s) - t0 )) s"
  grep -E "ERROR|FATAL|threw" "$OUT/tests.log" | head -40
  [ ${#targs[@]} -gt 0 ] && grep -E "test cases:|assertions:" "$OUT/tests.log"
  echo "GPU tests skipped: $(grep -c 'skipped: no CUDA device' "$OUT/tests.log")"
  if [ -z "$tests_filter$tc_filter" ]; then  # the CLI test (CTest cli_infer): stereort infer end to end
    (cd $B && ctest -R cli_infer --output-on-failure) >"$OUT/cli.log" 2>&1
    crc=$?
    echo "cli_infer (CTest): rc=$crc, $(grep -E 'tests passed|tests failed' "$OUT/cli.log")"
    [ $crc -ne 0 ] && trc=$crc
  fi
fi

if [ $bench -eq 1 ]; then
  : >"$OUT/bench.log"
  for b in $B/tests/*_bench; do
    [ -x "$b" ] || continue
    echo "$b" | grep -Eq "$bench_filter" || continue
    echo "### $b" >>"$OUT/bench.log"
    timeout 300 "$b" >>"$OUT/bench.log" 2>&1 || echo "### $b exited $?" >>"$OUT/bench.log"
  done
  cat "$OUT/bench.log"
fi
if [ $model_bench -eq 1 ]; then
  echo "### stereort ssm-equiv --device cuda" | tee -a "$OUT/bench.log"
  ./$B/stereort ssm-equiv --device cuda --quick 2>&1 | tail -25 | tee -a "$OUT/bench.log"
  echo "### stereort bench (StereoMamba V1)" | tee -a "$OUT/bench.log"
  ./$B/stereort bench --model stereomamba-v1 --sizes 1024x1280,512x960,256x512 --precision ${BENCH_PRECISIONS:-fp32,tf32,fp16,bf16} \
    --warmup 3 --iters 10 --json "$OUT/bench_v1.json" 2>&1 | tee -a "$OUT/bench.log"
fi
echo "gpu_check total: $(( $(date +%s) - start )) s"
exit $trc
