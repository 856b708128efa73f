#!/usr/bin/env bash
# gpu_smoke.sh: a short check for a CUDA machine. Sets up .venv (as `make setup`: a CUDA torch
# already in .venv is kept), then runs one NCCL rank per visible GPU through tplab.launch, each
# all-reducing a GPU tensor, and prints one summary line:
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
    fail "no NVIDIA GPU here (no nvidia-smi, no /dev/nvidiactl). Run this on a CUDA machine; on CPU use \`make test\`."
fi

if [ -z "${SKIP_SETUP:-}" ]; then
    make setup
fi
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || fail "no Python at $PY (run \`make setup\`)."

WORLD="${WORLD:-}" "$PY" - <<'PYEOF'
import os
import sys

import tplab  # first: sets PYTORCH_NVML_BASED_CUDA_CHECK so the parent never initialises CUDA
import torch


def fail(msg):
    print(f"gpu_smoke: FAIL {msg}", file=sys.stderr)
    sys.exit(1)


if torch.version.cuda is None:
    fail(f"torch {torch.__version__} in {sys.prefix} is not a CUDA build. Keep a CUDA torch: "
         "`rm -rf .venv && python3 -m venv .venv && .venv/bin/pip install torch` (a CUDA wheel "
         "from https://pytorch.org/get-started/locally/), then run this again; `make` keeps it.")
gpus = torch.cuda.device_count()
if gpus < 1:
    fail(f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (CUDA_VISIBLE_DEVICES="
         f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!s}); check the driver with nvidia-smi.")
world = int(os.environ.get("WORLD") or gpus)
if not 1 <= world <= gpus:
    fail(f"WORLD={world} but {gpus} GPU(s) are visible.")

NUMEL = 1 << 20  # 4 MiB of fp32
ITERS = 20


def worker():
    import time

    import torch
    import torch.distributed as dist

    rank, n = dist.get_rank(), dist.get_world_size()
    dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    x = torch.ones(NUMEL, device=dev) * (rank + 1)
    dist.all_reduce(x)
    expected = n * (n + 1) / 2
    ok = bool(torch.all(x == expected).item())
    y = torch.ones(NUMEL, device=dev)
    for _ in range(3):
        dist.all_reduce(y)
    torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(ITERS):
        dist.all_reduce(y)
    torch.cuda.synchronize(dev)
    ms = (time.perf_counter() - t0) * 1e3 / ITERS
    return {"ok": ok, "got": x[0].item(), "expected": expected, "ms": ms,
            "gpu": torch.cuda.get_device_name(dev), "backend": dist.get_backend()}


try:
    results = tplab.launch(worker, world, backend="nccl", timeout=180)
except tplab.WorkerError as e:
    fail(f"a rank failed:\n{e}")
bad = [(r, res["got"], res["expected"]) for r, res in enumerate(results) if not res["ok"]]
if bad:
    fail(f"all_reduce gave wrong sums (rank, got, expected): {bad}")
backend = results[0]["backend"]
ms = max(res["ms"] for res in results)
print(f"gpu_smoke: OK {backend} world={world} gpus={[res['gpu'] for res in results]} "
      f"all_reduce(4 MiB fp32)={ms:.3f} ms torch={torch.__version__} cuda={torch.version.cuda}")
PYEOF

# Decode speed on GPU 0: the weights a token reads x tokens/s, against a 1 GiB sum's bandwidth
# (bench/decode.py's own timers, so the figures mean what its rows mean).
"$PY" - <<'PYEOF'
import sys

import tplab  # noqa: F401  (first, as above)
import torch

sys.path.insert(0, "bench")
from decode import NEW_TOKENS, device_read_gbs, prompt_ids, time_fast  # noqa: E402

from tplab.models.fast_decode import FastDecoder  # noqa: E402
from tplab.models.loading import load_llama  # noqa: E402

device = torch.device("cuda", 0)
model, ids = load_llama(), prompt_ids()
hbm = device_read_gbs(device)
parts = []
for label, options in (("fp32", {}), ("bf16 compiled", {"dtype": torch.bfloat16, "compile": True})):
    decoder = FastDecoder(model, device=device, **options)
    seconds = decoder.warm_up()  # compiles, if asked (a warning and eager if it cannot)
    compiled = "" if seconds is None else f" (compile {seconds:.0f} s)"
    if options.get("compile") and not decoder.compiled_ok:
        compiled = " (compile failed: eager)"
    time_fast(decoder, ids)  # warm-up
    tok_s = NEW_TOKENS / min(time_fast(decoder, ids)[1] for _ in range(3))
    share = decoder.weight_bytes() * tok_s / 1e9 / hbm
    parts.append(f"{label} {tok_s:.0f} tok/s = {share:.0%} of HBM{compiled}")
print(f"gpu_smoke: decode SmolLM2-135M TP=1: {', '.join(parts)} (HBM read {hbm:.0f} GB/s)")
PYEOF

# TP=2 on NCCL ranks in bf16 against TP=1 (tplab.models.tp_devices.smoke_line, tested on CPU
# ranks by tests/test_tp_devices.py); the parent process leaves CUDA to the ranks.
"$PY" - <<'PYEOF'
import sys

import tplab  # first, as above
import torch

sys.path.insert(0, "bench")
from decode import NEW_TOKENS, prompt_ids  # noqa: E402

from tplab.models.tp_devices import smoke_line  # noqa: E402

try:
    print(smoke_line(torch.cuda.device_count(), prompt_ids(), NEW_TOKENS))
except tplab.WorkerError as e:
    print(f"gpu_smoke: FAIL TP=2 decoding: a rank failed:\n{e}", file=sys.stderr)
    sys.exit(1)
PYEOF
