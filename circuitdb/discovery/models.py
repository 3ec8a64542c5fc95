"""Load the model a job runs on: the shipped toy model, a checkpoint file (toy or TransformerLens), a local Hugging Face
folder, or a TransformerLens name; `bridge:` before a folder or name loads it through TransformerLens's
TransformerBridge (Hugging Face's own modules under TransformerLens hook names) instead of converting it.

Hub downloads fail fast and clearly when offline (HF_HUB_OFFLINE=1 or no route to the hub), never hang.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from circuitdb.discovery.bridge import BridgeModel
from circuitdb.discovery.codec import Codec, HFCodec
from circuitdb.discovery.graph import ModelGraph
from circuitdb.discovery.lens import HookedTransformer, HookedTransformerConfig, hooked, require_hooked
from circuitdb.domain import Model
from circuitdb.errors import CircuitdbError

HUB = ("huggingface.co", 443)
BRIDGE = "bridge:"


@dataclass
class LoadedModel:
    """A HookedTransformer (or a TransformerBridge behind `BridgeModel`) with the hooks discovery needs switched on,
    its tokenizer, graph and catalog identity."""

    name: str
    model: HookedTransformer | BridgeModel
    codec: Codec | None  # None: a model without a tokenizer, whose tasks come as token ids
    source: str

    @classmethod
    def of(cls, model: Any, name: str | None = None) -> LoadedModel:
        """A HookedTransformer or TransformerBridge built or loaded in Python (its tokenizer, if it has one, reads
        prompt texts); other objects are refused by type."""
        from transformer_lens.model_bridge import TransformerBridge

        if isinstance(model, TransformerBridge):
            model, source = BridgeModel(model), "a TransformerBridge given in Python"
        elif hooked(model) or isinstance(model, BridgeModel):
            source = f"a {type(model).__name__} given in Python"
        else:
            raise CircuitdbError(f"discovery takes a HookedTransformer or a TransformerBridge, not a "
                                 f"{type(model).__name__}; a Hugging Face model is taken as a local folder (--model ./folder)")
        given = model.cfg.model_name
        name = name or (Path(given).name if Path(given).is_dir() else given)  # a bridge booted from a folder: its name
        codec = HFCodec(model.tokenizer, name, model.cfg.default_prepend_bos) if model.tokenizer is not None else None
        return cls(name, prepare(model), codec, source)

    @cached_property
    def graph(self) -> ModelGraph:
        """The model's node and edge graph, built on first use."""
        return ModelGraph.from_config(self.model.cfg)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (`--device`): tensors the methods build to meet its activations go there."""
        return self.model.W_U.device

    @property
    def meta(self) -> Model:
        cfg = self.model.cfg
        return Model(self.name, cfg.n_layers, cfg.n_heads, cfg.d_model, self.source)

    def tokens(self, prompts: list[str]) -> torch.Tensor:
        """Token ids `[N, pos]` (BOS prepended where the model uses one, unless a prompt starts with it); all prompts
        must have the same length."""
        if self.codec is None:
            raise CircuitdbError(f"model {self.name} has no tokenizer: give its tasks as token ids (TaskData.from_tokens)")
        bos = [] if self.codec.bos is None else [self.codec.bos]
        rows = []
        for prompt in prompts:
            ids = self.codec.encode(prompt)
            rows.append(ids if ids[:1] == bos else bos + ids)
        lengths = sorted({len(r) for r in rows})
        if len(lengths) > 1:
            example = {n: next(p for p, r in zip(prompts, rows) if len(r) == n) for n in lengths[:3]}
            raise CircuitdbError(
                f"prompts have unequal token lengths {lengths} under {self.name}'s tokenizer; the methods need one length "
                f"(e.g. {'; '.join(f'{n}: {p!r}' for n, p in example.items())})"
            )
        return torch.tensor(rows, dtype=torch.long)


def prepare(model: HookedTransformer | BridgeModel) -> HookedTransformer | BridgeModel:
    """Eval mode, no weight gradients, MLP-input hooks on (where there are MLPs), grouped keys and values ungrouped
    (a HookedTransformer's: the same numbers, and every head gets its own k and v input to patch); per-head results
    and split q/k/v inputs stay off (they multiply the cost of every forward) until edge patching asks for them
    (`split_inputs`)."""
    model.set_use_attn_result(False)
    model.set_use_split_qkv_input(False)
    if not model.cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    if hooked(model) and model.cfg.n_key_value_heads is not None:
        model.set_ungroup_grouped_query_attention(True)  # keys and values per query head: each has its own k/v input
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def load_model(name: str, device: str = "cpu") -> LoadedModel:
    """`toy`, a checkpoint `NAME.pt` (a toy one from `circuitdb toy train -o`, or a TransformerLens one; named NAME),
    a path to a local Hugging Face model folder, or a TransformerLens model name (needs the hub); `bridge:FOLDER` or
    `bridge:NAME` through the TransformerBridge."""
    if name.startswith(BRIDGE):
        return _load_bridge(name.removeprefix(BRIDGE), device)
    path = Path(name).expanduser()
    saved = read_checkpoint(path) if path.suffix == ".pt" else None  # read once, whichever kind it is
    if name == "toy" or (saved is not None and "vocab" in saved):
        from circuitdb.discovery.toy import load_toy

        model, codec, _ = load_toy(None if name == "toy" else path, saved)
        label = "toy" if name == "toy" else path.stem
        return LoadedModel(label, prepare(model.to(device, print_details=False)), codec, f"circuitdb toy checkpoint {name}")
    if saved is not None:
        return LoadedModel(path.stem, prepare(_from_checkpoint(path, saved).to(device, print_details=False)), None,
                           f"TransformerLens checkpoint {path}")
    if HookedTransformer is None:  # TransformerLens 4: folders and hub names go through the bridge
        return _load_bridge(name, device)
    if path.exists() or name.startswith((".", "/", "~")):
        return _load_folder(path, device)
    return _load_hub(name, device)


def read_checkpoint(path: Path) -> dict:
    """`torch.save({"config": ..., "state_dict": ...})` read weights-only (no code runs), numpy scalars allowed, since
    `HookedTransformerConfig.to_dict()` holds some; one line when the file is missing or is not such a dict."""
    import numpy as np

    if not path.is_file():
        raise CircuitdbError(f"no model checkpoint at {path}")
    scalars = [np.dtype, np._core.multiarray.scalar, *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "bool"))]
    try:
        with torch.serialization.safe_globals(scalars):
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or a corrupt file: the same to the user
        raise CircuitdbError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0][:160]})") from None
    if not isinstance(saved, dict) or not {"config", "state_dict"} <= set(saved):
        raise CircuitdbError(f"{path}: not a model checkpoint (want a dict with 'config' and 'state_dict', as "
                             f"torch.save({{'config': model.cfg.to_dict(), 'state_dict': model.state_dict()}}, path))")
    return saved


def _from_checkpoint(path: Path, saved: dict) -> HookedTransformer:
    """A HookedTransformer of any config TransformerLens builds, with the weights `read_checkpoint` got from `path`
    (as saved: no processing)."""
    require_hooked(f"the checkpoint {path}")
    try:
        model = HookedTransformer(HookedTransformerConfig.from_dict(dict(saved["config"])), move_to_device=False)
        model.load_state_dict(saved["state_dict"])
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as exc:
        raise CircuitdbError(f"{path}: the checkpoint does not build a HookedTransformer ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
    return model.eval()


def _load_folder(path: Path, device: str) -> LoadedModel:
    """A local Hugging Face folder (config, weights, tokenizer) of any architecture TransformerLens converts."""
    config = path / "config.json"
    if not config.is_file():
        raise CircuitdbError(f"{path}: not a Hugging Face model folder (no config.json)")
    from transformers import AutoModelForCausalLM

    try:
        name = _folder_name(path)
        hf_model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        tokenizer = _tokenizer(path)
        model = _converted(path, hf_model, tokenizer)
    except (OSError, ValueError, KeyError, AttributeError, NotImplementedError, RuntimeError) as exc:
        raise CircuitdbError(f"{path}: cannot load as a TransformerLens model ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
    return LoadedModel(name, prepare(model.to(device, print_details=False)),
                       HFCodec(tokenizer, name, model.cfg.default_prepend_bos), f"folder {path}")


def _folder_name(path: Path) -> str:
    """The catalog's name of a model folder: the name its config was saved under, else the folder's."""
    return json.loads((path / "config.json").read_text()).get("_name_or_path") or path.name


def _load_bridge(name: str, device: str) -> LoadedModel:
    """A local Hugging Face folder, or a hub model (fails fast offline), through TransformerLens's TransformerBridge:
    any architecture it wraps, run by Hugging Face's own modules."""
    from transformer_lens.model_bridge import TransformerBridge

    path = Path(name).expanduser()
    local = path.exists() or name.startswith((".", "/", "~"))
    if local and not (path / "config.json").is_file():
        raise CircuitdbError(f"{path}: not a Hugging Face model folder (no config.json)")
    if not local:
        why = None if _cached(name) else hub_unavailable()
        if why:
            raise CircuitdbError(f"model {name!r} must be downloaded from the Hugging Face hub, but {why}; "
                                 f"use a local model folder (--model bridge:./path/to/model)")
    try:
        tokenizer = _tokenizer(path) if local else None
        bridge = TransformerBridge.boot_transformers(str(path) if local else name, tokenizer=tokenizer, device=device)
        model = BridgeModel(bridge)
    except (OSError, ValueError, KeyError, AttributeError, NotImplementedError, RuntimeError) as exc:
        raise CircuitdbError(f"{name}: cannot load through the TransformerBridge ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})") from None
    label = _folder_name(path) if local else name
    # the folder's tokenizer as `_tokenizer` reads it: the bridge reloads it by the model type's class
    codec = HFCodec(tokenizer or model.tokenizer, label, model.cfg.default_prepend_bos)
    return LoadedModel(label, prepare(model), codec,
                       f"TransformerBridge {'folder ' + str(path) if local else name}")


def _tokenizer(path: Path) -> Any:
    """The folder's tokenizer as saved. A generic fast tokenizer (one trained with `tokenizers`) is loaded from its
    tokenizer.json as is: transformers would substitute the model type's own tokenizer class, which splits words
    differently."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    settings = path / "tokenizer_config.json"
    declared = json.loads(settings.read_text()).get("tokenizer_class") if settings.is_file() else None
    if declared in ("TokenizersBackend", "PreTrainedTokenizerFast") and (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _converted(path: Path, hf_model: Any, tokenizer: Any) -> HookedTransformer:
    """TransformerLens's conversion of a Hugging Face model by the architecture its folder's config names, with
    `from_pretrained`'s weight processing; never the hub. It reads the folder through a neutral alias, since
    TransformerLens picks some architectures by words in a model's name, whose config also carries `n_ctx` (GPT-2
    configs of transformers 5 no longer do)."""
    from transformer_lens import loading_from_pretrained as loading

    with tempfile.TemporaryDirectory() as tmp:
        alias = Path(tmp) / "model"
        alias.mkdir()
        for file in path.iterdir():
            if file.name != "config.json":
                (alias / file.name).symlink_to(file.resolve())
        hf_config = json.loads((path / "config.json").read_text())
        if "n_positions" in hf_config:
            hf_config.setdefault("n_ctx", hf_config["n_positions"])
        (alias / "config.json").write_text(json.dumps(hf_config))
        cfg = loading.get_pretrained_model_config(str(alias), fold_ln=True)
        state = loading.get_pretrained_state_dict(str(alias), cfg, hf_model)
    model = HookedTransformer(cfg, tokenizer, move_to_device=False)
    model.load_and_process_state_dict(state, fold_ln=True, center_writing_weights=True, center_unembed=True,
                                      fold_value_biases=True)
    return model


def hub_reachable(timeout: float = 1.0) -> bool:
    """A quick TCP check, so a machine without a route to the hub fails in a second instead of retrying for minutes."""
    try:
        socket.create_connection(HUB, timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_unavailable() -> str | None:
    """Why the hub cannot be used right now (HF_HUB_OFFLINE or no route), or None when it can."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return "HF_HUB_OFFLINE is set"
    return None if hub_reachable() else "the Hugging Face hub is unreachable"


def _official_name(name: str) -> str:
    """TransformerLens's hub id for a model name; an unknown name is a clear error."""
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        return get_official_model_name(name)
    except ValueError:
        raise CircuitdbError(f"unknown model {name!r}: not a TransformerLens model name, a model folder, or 'toy'") from None


def _cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def _load_hub(name: str, device: str) -> LoadedModel:
    repo = _official_name(name)
    why = None if _cached(repo) else hub_unavailable()
    if why:
        raise CircuitdbError(
            f"model {name!r} must be downloaded from the Hugging Face hub, but {why}; use --model toy, "
            f"or a local model folder (--model ./path/to/model)"
        )
    try:
        model = HookedTransformer.from_pretrained(name, device=device)
    except (OSError, ValueError) as exc:
        raise CircuitdbError(f"cannot load model {name!r}: {' '.join(str(exc).split())[:200]}") from None
    return LoadedModel(name, prepare(model), HFCodec(model.tokenizer, name, model.cfg.default_prepend_bos), "transformer_lens")
