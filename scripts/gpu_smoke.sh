#!/usr/bin/env bash
# gpu_smoke.sh: a short check for a CUDA machine. Sets up .venv (as `make setup`: a CUDA torch
# already in .venv is kept), then runs scripts/gpu_smoke.py (the checks; its --cpu runs the same
# code on CPU ranks, which is how tests/test_gpu.py tests it without a GPU): one NCCL rank per
# visible GPU through tplab.launch, each all-reducing a GPU tensor, and one summary line:
#   gpu_smoke: OK nccl world=2 gpus=['NVIDIA H100 80GB HBM3', ...] all_reduce(4 MiB fp32)=0.081 ms
# then decodes SmolLM2-135M at TP=1 on GPU 0 (tplab.models.fast_decode: static KV cache; fp32
# eager, then bf16 with the step compiled to CUDA graphs) and prints a decode-speed line: tokens/s
# and the share of the GPU's measured read bandwidth (weights read per token x tokens/s), e.g.
#   gpu_smoke: decode SmolLM2-135M TP=1: fp32 ... tok/s = ..% of HBM, bf16 compiled ... (HBM ...)
# then, with 2 GPUs or more, decodes it at TP=2 on two NCCL ranks in bf16 (the default model,
# eager: tplab.models.tp_devices.decode_on_rank) and at TP=1 the same way, and prints
#   gpu_smoke: decode SmolLM2-135M TP=2 NCCL bf16: ... tok/s, tokens equal to TP=1 bf16: k/64
# (k < 64 is expected past a near-tie: bf16 TP=2 rounds its sums differently from TP=1; on
# this prompt the 16th token is an exact bf16 tie on a CPU); with 1 GPU a line says it skipped.
#
# Usage: scripts/gpu_smoke.sh
#   SKIP_SETUP=1 PY=/path/to/python scripts/gpu_smoke.sh   # use an existing environment instead
#   WORLD=2 scripts/gpu_smoke.sh                           # fewer ranks than GPUs
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "gpu_smoke: FAIL $*" >&2; exit 1; }

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -q '^GPU ' || fail "nvidia-smi lists no GPU on this machine."
elif [ ! -e /dev/nvidiactl ]; then
    fail "no NVIDIA GPU here (no nvidia-smi, no /dev/nvidiactl). Run this on a CUDA machine; on CPU use \`make test\` (or \`.venv/bin/python scripts/gpu_smoke.py --cpu\`: the same checks on CPU ranks)."
fi

if [ -z "${SKIP_SETUP:-}" ]; then
    make setup
fi
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || fail "no Python at $PY (run \`make setup\`)."

exec "$PY" scripts/gpu_smoke.py  # the three checks (scripts/gpu_smoke.py --cpu: on a CPU)
