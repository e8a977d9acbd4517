"""A tiny llama-architecture GGUF model with random weights, written at test time.

It exists so tests can run a real inference engine (llama.cpp, through
llama-cpp-python's server) in milliseconds. Its weights are random: it generates
gibberish, and nothing it produces may be read as a real model's output.

The tokenizer is a SentencePiece ("llama") vocabulary of single characters: the three
control tokens, the printable ASCII characters but "<" (space written as "▁") and the
newline. Without "<" the output can never spell the end token "</s>", which
llama-cpp-python would treat as a stop string and hold text back for, so each streamed
delta is exactly one generated token.
No two characters merge, so a prompt's token count is its character count plus the BOS
token plus the leading "▁" llama.cpp adds. Text outside printable ASCII cannot be
tokenized by this vocabulary; the tests send none.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

MODEL_NAME = "tiny-random-llama"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)

_CONTROL = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2: unk, bos, eos
_NORMAL, _UNKNOWN, _CONTROL_TYPE = 1, 2, 3  # SentencePiece token types


def vocabulary() -> list[str]:
    """Token texts by id."""
    chars = ["▁" if c == " " else c for c in map(chr, range(0x20, 0x7F)) if c != "<"]
    return [*_CONTROL, *chars, "\n"]


def write_tiny_llama(
    path: Path,
    *,
    context_length: int = 512,
    embedding: int = 64,
    layers: int = 2,
    heads: int = 4,
    feed_forward: int = 128,
    seed: int = 0,
) -> Path:
    """Write the model to ``path`` (f32, a few hundred KB) and return ``path``."""
    tokens = vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        # numpy shapes are ggml's dimensions reversed: (rows = outputs, columns = inputs)
        return rng.normal(0.0, 0.5 / np.sqrt(shape[-1]), size=shape).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(MODEL_NAME)
    writer.add_description("random weights, for tests only: its output is meaningless")
    writer.add_context_length(context_length)
    writer.add_embedding_length(embedding)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(embedding // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    types = [_UNKNOWN, _CONTROL_TYPE, _CONTROL_TYPE] + [_NORMAL] * (n_vocab - 3)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    ones = np.ones(embedding, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weights(n_vocab, embedding))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", weights(n_vocab, embedding))
    for i in range(layers):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(embedding, embedding))
        writer.add_tensor(f"{block}.ffn_norm.weight", ones)
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(feed_forward, embedding))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(feed_forward, embedding))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(embedding, feed_forward))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
