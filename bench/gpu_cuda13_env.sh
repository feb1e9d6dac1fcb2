# Sourced before bench/gpu.sh on a Linux machine whose NVIDIA stack is CUDA
# 13 only (no CUDA 12 libraries, no package registry), with TensorFlow 2.21's
# wheel (built for CUDA 12.5) unpacked into a folder:
#   TF_SITE=/tmp/tfsite source bench/gpu_cuda13_env.sh && bash bench/gpu.sh
# It links the CUDA 13 cuBLAS, cuBLASLt, cuFFT, cuSOLVER, cuSPARSE,
# nvJitLink, NVRTC and CUPTI under the CUDA 12 names TensorFlow opens (their
# C APIs are what TensorFlow calls), takes libcudart.so.12 from TF_SITE
# (carry nvidia-cuda-runtime-cu12 there: the runtime is the one library
# linked by its real CUDA 12 name), puts cuDNN 9 and NCCL 2 on the library
# path, and points XLA at the CUDA 13 ptxas and libdevice. This is how
# bench/results/gpu_h200.md ran; with `pip install 'tensorflow[and-cuda]'`
# none of it is needed.
# Environment: TF_SITE (required), CUDA_SEARCH (default: /opt /usr/local
# /usr/lib), CU12_LINKS (default: $TF_SITE/.cu12, the links).
_cu13_main() {
  local site="${TF_SITE:?set TF_SITE to the unpacked TensorFlow wheel}"
  local links="${CU12_LINKS:-$site/.cu12}" found name pattern f dirs cuda
  mkdir -p "$links" || return 2
  found="$(find ${CUDA_SEARCH:-/opt /usr/local /usr/lib} \( -name 'lib*.so*' \
    -o -name libdevice.10.bc \) 2>/dev/null)"
  for pair in libcublas.so.12:libcublas.so.13 libcublasLt.so.12:libcublasLt.so.13 \
      libcufft.so.11:libcufft.so.12 libcusolver.so.11:libcusolver.so.12 \
      libcusparse.so.12:libcusparse.so.12 libnvJitLink.so.12:libnvJitLink.so.13 \
      libnvrtc.so.12:libnvrtc.so.13 libcupti.so.12:libcupti.so.13; do
    name="${pair%%:*}"; pattern="${pair#*:}"
    f="$(grep -E "/${pattern//./\\.}\$" <<<"$found" | sort | tail -1)"
    if [[ -n "$f" ]]; then ln -sfn "$f" "$links/$name"; else
      echo "gpu_cuda13_env: no $pattern under ${CUDA_SEARCH:-/opt /usr/local /usr/lib}" >&2; fi
  done
  if [[ -f "$site/nvidia/cuda_runtime/lib/libcudart.so.12" ]]; then
    ln -sfn "$site/nvidia/cuda_runtime/lib/libcudart.so.12" "$links/libcudart.so.12"
  else
    echo "gpu_cuda13_env: no libcudart.so.12 in $site (nvidia-cuda-runtime-cu12)" >&2
  fi
  dirs="$(grep -E '/(libcudnn\.so\.9|libnccl\.so\.2|libcublas\.so\.13|libnvrtc\.so\.13|libnvJitLink\.so\.13)$' \
    <<<"$found" | xargs -r -n1 dirname | sort -u | paste -sd:)"
  export LD_LIBRARY_PATH="$links${dirs:+:$dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cuda="$(grep -E '/nvvm/libdevice/libdevice\.10\.bc$' <<<"$found" | head -1)"
  if [[ -n "$cuda" ]]; then
    cuda="$(dirname "$(dirname "$(dirname "$cuda")")")"
    export XLA_FLAGS="--xla_gpu_cuda_data_dir=$cuda${XLA_FLAGS:+ $XLA_FLAGS}"
    export PATH="$cuda/bin:$PATH"
  fi
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
}
_cu13_main
