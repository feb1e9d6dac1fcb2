#!/usr/bin/env bash
# Packs what bench/gpu.sh needs beyond a stock CUDA + Python 3.12 image
# (TensorFlow 2.21, Keras 3, tensorflow-graphics and their pure-Python
# needs, CUDA 12's runtime) for a Linux x86-64 GPU machine with no package
# registry, in parts small enough to send one at a time:
#   bash bench/gpu_pack.sh OUT_DIR [ARCH] [PART_BYTES]
# ARCH (default 90: H100, H200) is the one GPU architecture whose kernels
# are kept (bench/fatbin.py blanks the others); PART_BYTES defaults to
# 48000000. Writes OUT_DIR/tfsite.part00, part01, ... (191 MB in 4 parts
# for ARCH 90; 318 MB with every architecture). There, with the parts in
# /tmp/acc:
#   mkdir -p /tmp/tfsite && cat /tmp/acc/tfsite.part* | xz -d -T0 | tar -C /tmp/tfsite -xf -
#   TF_SITE=/tmp/tfsite source bench/gpu_cuda13_env.sh   # CUDA 13-only images
#   PYTHON=python3 bash bench/gpu.sh
# How it ran on an H100: bench/results/gpu_h100.md.
set -euo pipefail
out="${1:?usage: bash bench/gpu_pack.sh OUT_DIR [ARCH] [PART_BYTES]}"
arch="${2:-90}"
part_bytes="${3:-48000000}"
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$work/whl" tensorflow==2.21.0 keras==3.15.1 namex optree astunparse \
  gast google_pasta termcolor protobuf ml_dtypes wrapt \
  tensorflow-graphics==2021.12.3 nvidia-cuda-runtime-cu12==12.5.82
mkdir "$work/site"
for w in "$work"/whl/*.whl; do unzip -q -o "$w" -d "$work/site"; done
rm -rf "$work/site/tensorflow/include"
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  "$PY" -m bench.fatbin "$work/site/tensorflow/$lib" --keep="$arch" \
    --out="$work/lib"
  mv "$work/lib" "$work/site/tensorflow/$lib"
done
find "$work/site" -name '*.so*' -type f -size +1M -exec strip --strip-unneeded {} +
tar -C "$work/site" -cf - . | xz -9 -T0 | split -b "$part_bytes" -d - "$out/tfsite.part"
ls -l "$out"/tfsite.part*
