#!/usr/bin/env bash
# scripts/gpu_train.sh — training runs on the GPU machine (after scripts/gpu_check.sh has built build-gpu/).
#   throughput         StereoMamba V1 training at 512x256 (WxH) crop, batch 4, bf16 and fp16: pairs/s and peak memory;
#                      and the tiny demo configuration's step time (to size the demo run).
#   demo STEPS         train stereomamba-tiny on synthetic stereo for STEPS steps, evaluate on 200 held-out synthetic
#                      pairs and on the Motorcycle pair (data/motorcycle), export fp16 weights; results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/stereort-gpu-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
S=./build-gpu/stereort
TRAIN_DATA="synthetic:count=20000,seed=1,size=320x640,max_disp=64"
VAL_DATA="synthetic:count=200,seed=777,size=320x640,max_disp=64"
case "${1:-}" in
  throughput)
    for p in bf16 fp16; do
      echo "### V1 training throughput, 512x256 crop, batch 4, $p"
      $S train --model stereomamba-v1 --data "synthetic:count=64,seed=3,size=320x576" --steps 30 --batch 4 \
        --crop 256x512 --precision $p --workers 8 --out /tmp/tp_$p --val-every 0 --ckpt-every 0 --log-every 10 2>&1 | tail -4
    done
    echo "### tiny demo configuration, 60 steps"
    $S train --model stereomamba-tiny --data "$TRAIN_DATA" --steps 60 --batch 8 --crop 256x512 --lr 1e-3 \
      --precision bf16 --workers 12 --out /tmp/tp_tiny --val-every 0 --ckpt-every 0 --log-every 20 2>&1 | tail -3
    ;;
  demo)
    steps=${2:-3000}
    run=/tmp/demo
    $S train --model stereomamba-tiny --data "$TRAIN_DATA" --steps "$steps" --batch 8 --crop 256x512 --lr 1e-3 \
      --precision bf16 --out $run --val "$VAL_DATA" --val-every $((steps / 4)) --val-count 50 --val-pngs 2 \
      --ckpt-every 0 --augment full --workers 12 --log-every 250 --seed 666 2>&1 | tail -20
    cp $run/train_log.csv "$OUT/demo_train_log.csv"
    $S convert $run/model.safetensors -o "$OUT/stereomamba-tiny-demo.safetensors" --dtype f16 2>&1 | tail -2
    W="$OUT/stereomamba-tiny-demo.safetensors"
    echo "### eval: 200 held-out synthetic pairs"
    $S eval --model stereomamba-tiny --weights "$W" --data "$VAL_DATA" --out /tmp/eval_syn 2>&1 | tail -8
    echo "### eval: Motorcycle (Middlebury 2014, 741x500)"
    $S eval --model stereomamba-tiny --weights "$W" --data motorcycle:data/motorcycle --out /tmp/eval_moto --pngs 1 2>&1 | tail -8
    cp /tmp/eval_syn/*.csv "$OUT/" 2>/dev/null; for f in /tmp/eval_moto/*.csv; do cp "$f" "$OUT/moto_$(basename $f)"; done
    $S infer --left data/motorcycle/im0.png --right data/motorcycle/im1.png --model stereomamba-tiny --weights "$W" \
      --out /tmp/inf_moto 2>&1 | tail -2
    cp /tmp/inf_moto/im0_disp_color.png "$OUT/motorcycle_disp_color.png"
    ;;
  *) echo "usage: gpu_train.sh throughput | demo STEPS"; exit 2 ;;
esac
