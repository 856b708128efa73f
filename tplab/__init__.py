"""tplab: data, tensor and pipeline parallelism for LLMs, built step by step on real ranks."""
import os as _os

# Ask NVML, not the CUDA runtime, how many GPUs there are: the parent process
# must not initialise CUDA before `launch` forks its ranks.
_os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

from tplab.ranks import WorkerError, launch  # noqa: E402

__all__ = ["launch", "WorkerError"]
__version__ = "0.1.0"
