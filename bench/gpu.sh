#!/usr/bin/env bash
# GPU readiness in one run (< 10 minutes on one H200-class GPU): the tests
# marked `gpu`, the full-size training step at batch 64 (float32 and mixed
# precision, XLA), the z-buffer alone at 2x64 and 2x256 maps, and 200 steps
# of configs/train_synface.yml on data written by tfunsup3d-synth. Prints one
# JSON summary (bench.gpu summary) on stdout; progress on stderr; the parts'
# logs go to $GPU_SH_LOG (dropped by default).
# Without a GPU visible to TensorFlow it prints {"bench": "gpu", "skipped":
# ...} and exits 0.
#   bash bench/gpu.sh                      # from the repository root
#   PYTHON=path/to/python GPU_MIXED="bfloat16 float16" bash bench/gpu.sh
#   GPU_SH_LOG=gpu.log bash bench/gpu.sh   # keep the parts' logs (default: dropped)
#   GPU_SH_WORK=/tmp/g GPU_SH_PARTS="tests zbuffer synth" bash bench/gpu.sh
#   GPU_SH_WORK=/tmp/g GPU_SH_PARTS="steps train" bash bench/gpu.sh
#       # the same run in two calls: the work folder (generated data, JSON
#       # lines) is kept when named, and each call's summary holds every
#       # part recorded in it so far
# Each part has its own time limit (635 s in all); a part that fails or runs
# out of time is recorded with an "error" and the others still run. Runs: an
# H200 on 2026-12-04 (bench/results/gpu_h200.md), an H100 on 2026-12-05
# (bench/results/gpu_h100.md, every part passed in 280 s over two calls).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY="${PYTHON:-python}"
MIXED="${GPU_MIXED:-bfloat16}"
ALL_PARTS="tests steps zbuffer synth train"
PARTS="${GPU_SH_PARTS:-$ALL_PARTS}"
for p in $PARTS; do
  if [[ " $ALL_PARTS " != *" $p "* ]]; then
    echo "gpu.sh: unknown part '$p' in GPU_SH_PARTS (parts: $ALL_PARTS)" >&2
    exit 2
  fi
done
if [[ -n "${GPU_SH_WORK:-}" ]]; then
  WORK="$GPU_SH_WORK"; mkdir -p "$WORK" || exit 2
else
  WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
fi
LINES="$WORK/lines.jsonl"
LOG="${GPU_SH_LOG:-$WORK/log}"

gpus="$("$PY" -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null)"
if [[ "${gpus:-0}" == "0" || -n "${GPU_SH_FORCE_SKIP:-}" ]]; then
  echo '{"bench": "gpu", "skipped": "no GPU visible to TensorFlow"}'
  exit 0
fi

part() {  # part SECONDS NAME COMMAND...: JSON lines of COMMAND -> $LINES
  local limit="$1" name="$2"; shift 2
  local start=$SECONDS
  if ! timeout "$limit" "$@" >>"$LINES" 2>>"$LOG"; then
    echo "{\"what\": \"$name\", \"error\": \"failed or over ${limit} s\"}" >>"$LINES"
  fi
  echo "gpu.sh: $name done in $((SECONDS - start)) s" >&2
}

tests_part() {  # the tests marked gpu (pytest exit 5: none selected)
  local rc
  timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rf --tb=short \
    tests/render tests/test_model.py >"$WORK/tests.out" 2>&1
  rc=$?
  cat "$WORK/tests.out" >>"$LOG"
  "$PY" - "$rc" "$WORK/tests.out" >>"$LINES" <<'PY'
import json, sys
rc, lines = int(sys.argv[1]), open(sys.argv[2]).read().splitlines()
rec = {'what': 'tests', 'rc': 0 if rc == 5 else rc,
       'result': (lines or [''])[-1].strip('= ')}
failures = [l for l in lines if l.startswith(('FAILED', 'E   '))][:12]
if failures:
  rec['failures'] = failures
if rec['rc']:
  rec['error'] = 'over 150 s' if rc == 124 else 'gpu tests failed'
print(json.dumps(rec))
PY
}

has() { [[ " $PARTS " == *" $1 "* ]]; }
has tests && tests_part
# One process per part: TF's import (~20 s there) is paid once per part; the
# full step's first call (XLA compile and autotuning) took 91 s on the H200,
# 40 s (float32) and 49 s (bfloat16) on the H100.
has steps && part 220 steps "$PY" -m bench.gpu step --precision="none,${MIXED// /,}"
has zbuffer && part 45 zbuffer "$PY" -m bench.gpu zbuffer --size=64,256
has synth && part 40 synth "$PY" -m tfunsup3d.tools.synth \
  --config=configs/train_synface.yml --crop=none --out_dir="$WORK/synface" \
  --num_train=1664 --num_val=64 --num_test=16 --overwrite
has train && part 180 train "$PY" -m bench.gpu train --data_dir="$WORK/synface" \
  --checkpoint_dir="$WORK/ckpt" --steps=200 --steps_per_epoch=25
touch "$LINES"
"$PY" -m bench.gpu summary "$LINES"
