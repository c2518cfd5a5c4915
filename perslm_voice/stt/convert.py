"""CTranslate2 Whisper weights -> an openai-whisper checkpoint, so both backends run the same model.

The CTranslate2 ``model.bin`` is read directly (a small binary format: version, spec name, then named
arrays), so no download and no transformers. CTranslate2 fuses attention projections: self-attention
``linear_0`` holds Q, K and V stacked, cross-attention ``linear_1`` holds K and V; openai-whisper keeps
them apart, and its key projections have no bias (CTranslate2 stores zeros there, which is checked).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

# CTranslate2's DataType enum.
_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model.bin (aliases resolved), as numpy arrays."""
    data = Path(path).read_bytes()
    offset = 0

    def unpack(fmt: str) -> Any:
        nonlocal offset
        value = struct.unpack_from(fmt, data, offset)[0]
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = unpack("<H")
        text = data[offset : offset + length - 1].decode()
        offset += length
        return text

    version = unpack("<I")
    if version < 5:
        raise ValueError(f"{path}: CTranslate2 model format {version} is too old (need 5 or later)")
    spec = string()
    if spec != "WhisperSpec":
        raise ValueError(f"{path}: not a Whisper model ({spec})")
    unpack("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("<I")):
        name = string()
        dims = [unpack("<I") for _ in range(unpack("<B"))]
        type_id = unpack("<B")
        size = unpack("<I")
        raw = data[offset : offset + size]
        offset += size
        if type_id == _BFLOAT16:
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, _DTYPES[type_id])
        variables[name] = array.reshape(dims)
    for _ in range(unpack("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def _layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    found = {int(m.group(1)) for k in variables if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
    return len(found)


def _linear(sd: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = v[f"{src}/weight"]
    sd[f"{dst}.bias"] = v[f"{src}/bias"]


def _norm(sd: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = v[f"{src}/gamma"]
    sd[f"{dst}.bias"] = v[f"{src}/beta"]


def _split(sd: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, names: list[str]) -> None:
    """Un-fuse stacked projections; a key projection has no bias in openai-whisper."""
    weights = np.split(v[f"{src}/weight"], len(names))
    biases = np.split(v[f"{src}/bias"], len(names))
    for name, weight, bias in zip(names, weights, biases, strict=True):
        sd[f"{name}.weight"] = weight
        if name.endswith(".key"):
            if np.abs(bias.astype(np.float32)).max() > 1e-6:
                raise ValueError(f"{src}: the key bias is not zero; the projections are not Q,K,V")
        else:
            sd[f"{name}.bias"] = bias


def _self_attention(
    sd: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str
) -> None:
    """One block's self-attention: its norm, the fused QKV projection split in three, the output."""
    _norm(sd, v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    _split(
        sd,
        v,
        f"{src}/self_attention/linear_0",
        [f"{dst}.attn.{p}" for p in ("query", "key", "value")],
    )
    _linear(sd, v, f"{src}/self_attention/linear_1", f"{dst}.attn.out")


def to_openai_whisper(
    variables: dict[str, np.ndarray],
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """openai-whisper's (dims, state dict) for a CTranslate2 Whisper model."""
    v = variables
    sd: dict[str, np.ndarray] = {}
    n_enc, n_dec = _layers(v, "encoder"), _layers(v, "decoder")
    for conv in ("conv1", "conv2"):
        _linear(sd, v, f"encoder/{conv}", f"encoder.{conv}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_enc):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _self_attention(sd, v, src, dst)
        _norm(sd, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        _linear(sd, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        _linear(sd, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(sd, v, "encoder/layer_norm", "encoder.ln_post")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_dec):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _self_attention(sd, v, src, dst)
        _norm(sd, v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        _linear(sd, v, f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        _split(
            sd, v, f"{src}/attention/linear_1", [f"{dst}.cross_attn.{p}" for p in ("key", "value")]
        )
        _linear(sd, v, f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        _norm(sd, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        _linear(sd, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        _linear(sd, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(sd, v, "decoder/layer_norm", "decoder.ln")
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_enc,
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(v["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_dec,
    }
    return dims, sd


def convert(model_dir: str | Path, out: str | Path) -> Path:
    """Write ``out`` (.pt), an openai-whisper checkpoint of the CTranslate2 model in ``model_dir``.

    Needs torch (the openai-whisper extra). Written to a temporary name and renamed: atomic.
    """
    import torch

    dims, state = to_openai_whisper(read_ct2(Path(model_dir) / "model.bin"))
    tensors = {k: torch.from_numpy(np.array(a, copy=True)) for k, a in state.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    torch.save({"dims": dims, "model_state_dict": tensors}, partial)
    partial.replace(out)
    return out
