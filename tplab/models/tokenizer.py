"""SmolLM2's tokenizer and chat template, built from the GGUF file with the `tokenizers` library.

The file holds a GPT-2-style byte-level BPE: 49,152 tokens and 48,900 merges. Its
pre-tokenizer is named `smollm`, which llama.cpp defines as GPT-2's split with every
digit on its own (as SmolLM2's original tokenizer.json does) — so that is what we build.
(The vocabulary has no multi-digit tokens, so a loader that skips the digit split, as
Hugging Face transformers' GGUF loader does, still gives the same ids.)
"""
from __future__ import annotations

import jinja2
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE

from tplab.models.gguf_file import GGUFModelFile


class SmolTokenizer:
    def __init__(self, model_file: GGUFModelFile | None = None):
        f = model_file or GGUFModelFile()
        tokens = f.field("tokenizer.ggml.tokens")
        merges = [tuple(m.split(" ", 1)) for m in f.field("tokenizer.ggml.merges")]
        self.tokenizer = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
        pre = f.field("tokenizer.ggml.pre")
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
        digits = pre_tokenizers.Digits(individual_digits=True)
        self.tokenizer.pre_tokenizer = (pre_tokenizers.Sequence([digits, byte_level])
                                        if pre == "smollm" else byte_level)
        self.tokenizer.decoder = decoders.ByteLevel()
        types = f.field("tokenizer.ggml.token_type")
        control = [t for t, kind in zip(tokens, types) if kind == 3]  # 3: a control token
        self.tokenizer.add_special_tokens(control)
        self.template = jinja2.Template(f.field("tokenizer.chat_template"))
        self.bos_id, self.eos_id = f.config.bos_id, f.config.eos_id

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def chat(self, user_message: str) -> str:
        """The prompt text for one user turn, ready for the assistant's answer."""
        return self.template.render(messages=[{"role": "user", "content": user_message}],
                                    add_generation_prompt=True)
