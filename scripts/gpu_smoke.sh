#!/usr/bin/env bash
# gpu_smoke.sh: a short check for a CUDA machine. Sets up .venv (as `make setup`: a CUDA torch
# already in .venv is kept), then runs one NCCL rank per visible GPU through tplab.launch, each
# all-reducing a GPU tensor, and prints one summary line:
#   gpu_smoke: OK nccl world=2 gpus=['NVIDIA H100 80GB HBM3', ...] all_reduce(4 MiB fp32)=0.081 ms
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
