"""SAELens's folder format (`cfg.json` + `sae_weights.safetensors`) read and written by project code, so feature
discovery works where SAELens cannot be installed (it requires transformer-lens < 4). Covers the inference
architectures researchers publish most: standard (ReLU), JumpReLU and TopK; anything else is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from circuitdb.errors import CircuitdbError

WEIGHTS = "sae_weights.safetensors"
LAYOUT_VERSION = "6.0.0"  # SAELens reads a cfg.json without a version as its older (5.x) layout
ARCHITECTURES = ("standard", "jumprelu", "topk")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


@dataclass(frozen=True)
class SAEConfig:
    """What encoding and decoding need from `cfg.json`; the hook comes from its `metadata.hook_name`."""

    d_in: int
    d_sae: int
    hook_name: str
    architecture: str = "standard"
    apply_b_dec_to_input: bool = True
    k: int = 0  # topk: features kept per token
    rescale_acts_by_decoder_norm: bool = False  # topk
    dtype: str = "float32"

    def to_dict(self) -> dict:
        """`cfg.json` as SAELens writes it for these fields."""
        out = {"d_in": self.d_in, "d_sae": self.d_sae, "dtype": self.dtype, "device": "cpu",
               "apply_b_dec_to_input": self.apply_b_dec_to_input, "normalize_activations": "none",
               "reshape_activations": "none", "architecture": self.architecture,
               "metadata": {"hook_name": self.hook_name, "sae_lens_version": LAYOUT_VERSION}}
        if self.architecture == "topk":
            out |= {"k": self.k, "rescale_acts_by_decoder_norm": self.rescale_acts_by_decoder_norm}
        return out


class FolderSAE(torch.nn.Module):
    """An SAE with SAELens's parameter names and shapes: `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`, `b_enc`,
    `b_dec`, and `threshold [d_sae]` for JumpReLU."""

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dtype = DTYPES[cfg.dtype]
        self.W_enc = torch.nn.Parameter(torch.zeros(cfg.d_in, cfg.d_sae, dtype=dtype))
        self.W_dec = torch.nn.Parameter(torch.zeros(cfg.d_sae, cfg.d_in, dtype=dtype))
        self.b_enc = torch.nn.Parameter(torch.zeros(cfg.d_sae, dtype=dtype))
        self.b_dec = torch.nn.Parameter(torch.zeros(cfg.d_in, dtype=dtype))
        if cfg.architecture == "jumprelu":
            self.threshold = torch.nn.Parameter(torch.zeros(cfg.d_sae, dtype=dtype))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations `[..., d_sae]` of activations `[..., d_in]`."""
        sae_in = x - self.b_dec if self.cfg.apply_b_dec_to_input else x
        pre = sae_in @ self.W_enc + self.b_enc
        if self.cfg.architecture == "jumprelu":
            return pre.relu() * (pre > self.threshold).to(pre.dtype)
        if self.cfg.architecture == "topk":
            if self.cfg.rescale_acts_by_decoder_norm:
                pre = pre * self.W_dec.norm(dim=-1)
            values, indices = pre.topk(self.cfg.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, indices, values.relu())
        return pre.relu()

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """The reconstruction `[..., d_in]` of feature activations."""
        if self.cfg.architecture == "topk" and self.cfg.rescale_acts_by_decoder_norm:
            f = f / self.W_dec.norm(dim=-1)
        return f @ self.W_dec + self.b_dec


def read_config(folder: Path) -> SAEConfig:
    """`cfg.json` checked for what this reader supports, with the field at fault named."""
    try:
        raw = json.loads((folder / "cfg.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CircuitdbError(f"{folder}/cfg.json: unreadable ({exc})") from None
    if not isinstance(raw, dict):
        raise CircuitdbError(f"{folder}/cfg.json: not a JSON object")
    architecture = raw.get("architecture", "standard")
    if architecture not in ARCHITECTURES:
        raise CircuitdbError(f"{folder}/cfg.json: architecture {architecture!r} needs SAELens installed "
                             f"(read here without it: {', '.join(ARCHITECTURES)})")
    for field in ("normalize_activations", "reshape_activations"):
        if raw.get(field, "none") not in ("none", None):
            raise CircuitdbError(f"{folder}/cfg.json: {field} {raw[field]!r} needs SAELens installed")
    hook = (raw.get("metadata") or {}).get("hook_name") or raw.get("hook_name") or raw.get("hook_point")  # 6.x, 5.x
    try:
        cfg = SAEConfig(int(raw["d_in"]), int(raw["d_sae"]), str(hook or ""), architecture,
                        bool(raw.get("apply_b_dec_to_input", True)), int(raw.get("k") or 0),
                        bool(raw.get("rescale_acts_by_decoder_norm", False)), str(raw.get("dtype", "float32")))
    except KeyError as exc:
        raise CircuitdbError(f"{folder}/cfg.json: no {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise CircuitdbError(f"{folder}/cfg.json: {exc}") from None
    if cfg.dtype not in DTYPES:
        raise CircuitdbError(f"{folder}/cfg.json: dtype {cfg.dtype!r} (use one of {', '.join(DTYPES)})")
    if architecture == "topk" and not 0 < cfg.k <= cfg.d_sae:
        raise CircuitdbError(f"{folder}/cfg.json: topk needs k between 1 and d_sae ({cfg.d_sae}), got {cfg.k}")
    return cfg


def read_folder(folder: Path) -> FolderSAE:
    """An SAE from a SAELens folder, its weights checked against `cfg.json` name by name and shape by shape."""
    sae = FolderSAE(read_config(folder))
    try:
        weights = load_file(folder / WEIGHTS)
    except Exception as exc:  # a missing or corrupt file: safetensors raises several types
        raise CircuitdbError(f"{folder}/{WEIGHTS}: unreadable ({type(exc).__name__}: {exc})") from None
    expected = dict(sae.named_parameters())
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise CircuitdbError(f"{folder}/{WEIGHTS}: no {', '.join(missing)}")
    for name, parameter in expected.items():
        if weights[name].shape != parameter.shape:
            raise CircuitdbError(f"{folder}/{WEIGHTS}: {name} has shape {list(weights[name].shape)}, "
                                 f"cfg.json implies {list(parameter.shape)}")
        parameter.data.copy_(weights[name])
    return sae


def write_folder(sae: FolderSAE, folder: Path) -> None:
    """`cfg.json` and `sae_weights.safetensors` as SAELens's `save_model` lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: p.detach().contiguous() for name, p in sae.named_parameters()}, folder / WEIGHTS)
    (folder / "cfg.json").write_text(json.dumps(sae.cfg.to_dict()))
