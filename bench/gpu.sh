#!/usr/bin/env bash
# GPU readiness in one run (< 8 minutes on one H200-class GPU): the tests
# marked `gpu`, the full-size training step at batch 64 (float32 and mixed
# precision, XLA), the z-buffer alone at 2x64 and 2x256 maps, and 200 steps
# of configs/train_synface.yml on data written by tfunsup3d-synth. Prints one
# JSON summary (bench.gpu summary) on stdout; logs go to stderr.
# Without a GPU visible to TensorFlow it prints {"bench": "gpu", "skipped":
# ...} and exits 0.
#   bash bench/gpu.sh                      # from the repository root
#   PYTHON=path/to/python GPU_MIXED="bfloat16 float16" bash bench/gpu.sh
# Each part has its own time limit (480 s in all with the default GPU_MIXED);
# a part that fails or runs out of time is recorded with an "error" and the
# others still run. Not yet run on a GPU: no session has had one.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY="${PYTHON:-python}"
MIXED="${GPU_MIXED:-bfloat16}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
LINES="$WORK/lines.jsonl"

gpus="$("$PY" -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null)"
if [[ "${gpus:-0}" == "0" || -n "${GPU_SH_FORCE_SKIP:-}" ]]; then
  echo '{"bench": "gpu", "skipped": "no GPU visible to TensorFlow"}'
  exit 0
fi

part() {  # part SECONDS NAME COMMAND...: JSON lines of COMMAND -> $LINES
  local limit="$1" name="$2"; shift 2
  local start=$SECONDS
  if ! timeout "$limit" "$@" >>"$LINES" 2>>"$WORK/log"; then
    echo "{\"what\": \"$name\", \"error\": \"failed or over ${limit} s\"}" >>"$LINES"
  fi
  echo "gpu.sh: $name done in $((SECONDS - start)) s" >&2
}

tests_part() {  # the tests marked gpu (pytest exit 5: none selected)
  local out rc last
  out="$(timeout 60 "$PY" -m pytest -q -p no:cacheprovider -m gpu \
    tests/render tests/test_model.py 2>&1)"
  rc=$?
  [[ $rc == 5 ]] && rc=0
  last="$(echo "$out" | tail -1 | tr -d '"\\')"
  echo "{\"what\": \"tests\", \"rc\": $rc, \"result\": \"$last\"}" >>"$LINES"
  [[ $rc == 0 ]] || echo "{\"what\": \"tests\", \"rc\": $rc, \"error\": \"gpu tests failed or over 60 s\"}" >>"$LINES"
}

tests_part
for precision in none $MIXED; do
  part 90 "step/$precision" "$PY" -m bench.gpu step --precision="$precision"
done
for size in 64 256; do
  part 35 "zbuffer/$size" "$PY" -m bench.gpu zbuffer --size="$size"
done
part 50 synth "$PY" -m tfunsup3d.tools.synth --config=configs/train_synface.yml \
  --crop=none --out_dir="$WORK/synface" --num_train=1664 --num_val=64 \
  --num_test=16 --overwrite
part 120 train "$PY" -m bench.gpu train --data_dir="$WORK/synface" \
  --checkpoint_dir="$WORK/ckpt" --steps=200 --steps_per_epoch=25
"$PY" -m bench.gpu summary "$LINES"
