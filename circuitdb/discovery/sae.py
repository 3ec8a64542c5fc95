"""Sparse autoencoders (SAELens format) as discovery sees them: named dictionaries at a hook of one model.

A dictionary comes from the shipped toy SAEs (`toy:resid2`), a local SAELens folder (`cfg.json` +
`sae_weights.safetensors`; read by SAELens where it is installed, else by `sae_format`), or a pretrained SAELens
release (`release/sae_id`, needs SAELens and the hub, and fails fast offline). `train_sae` fits a small SAE on the toy
model's residual stream with project code, so everything works offline and without SAELens.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from circuitdb.discovery.bridge import BridgeModel
from circuitdb.discovery.graph import hook_layer
from circuitdb.discovery.models import LoadedModel, hub_unavailable, load_model
from circuitdb.discovery.sae_format import FolderSAE, SAEConfig, read_folder, write_folder
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter

TOY_SAE_DIR = Path(__file__).parent / "data" / "toy_sae"
TOY_LAYERS = (2, 3)  # residual stream entering these blocks; the toy model's task heads sit in layers 1-3
EXPANSION = 4
STEPS = 6000
BATCH = 1024
LR = 2e-3
L1 = 4e-3
THREADS = 1

_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_mlp_out|attn\.hook_z)$")
# a TransformerBridge's own names of the hooks above (SAELens on a bridge saves these), where every model wires them alike
_BRIDGE_NAMES = {"hook_in": "hook_resid_pre", "hook_out": "hook_resid_post"}
_SHORT = {"hook_resid_pre": "resid", "hook_resid_mid": "mid", "hook_resid_post": "post", "hook_mlp_out": "mlpout",
          "attn.hook_z": "attnz"}


@dataclass
class Dictionary:
    """One SAE read at `hook` of a model, named so its features are `f<name>/<index>` (the name's number is the layer);
    `sae` is SAELens's module or a `FolderSAE`, which share parameter names, `cfg.d_in`/`cfg.d_sae`, encode and decode."""

    name: str
    hook: str
    sae: torch.nn.Module
    source: str

    @property
    def layer(self) -> int:
        """The block whose hook the dictionary reads."""
        return hook_layer(self.hook)

    @property
    def size(self) -> int:
        """Number of features."""
        return self.sae.cfg.d_sae

    @property
    def directions(self) -> torch.Tensor:
        """Unit decoder directions `[d_sae, d_model]`."""
        w = self.sae.W_dec.detach()
        return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations `[..., d_sae]` of activations `[..., d_in]`."""
        return self.sae.encode(x)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """The reconstruction `[..., d_in]` of feature activations."""
        return self.sae.decode(f)


def dictionary_name(hook: str) -> str:
    """`blocks.2.hook_resid_pre` -> `resid2`: short, and the first number is the layer, as feature names need."""
    found = _HOOK.match(hook)
    if not found:
        raise CircuitdbError(f"SAE hook {hook!r} is not supported (use blocks.L.hook_resid_pre|mid|post or hook_mlp_out)")
    return f"{_SHORT[found.group(2)]}{found.group(1)}"


def load_dictionary(spec: str, lm: LoadedModel) -> Dictionary:
    """`toy:resid2`, `[NAME=]path/to/sae_folder`, or `[NAME=]release/sae_id`; checked against the model's width."""
    name, _, where = spec.rpartition("=") if "=" in spec else ("", "", spec)
    if where.startswith("toy:"):
        if lm.name != "toy":
            raise CircuitdbError(f"SAE {where} belongs to the toy model, not {lm.name}; give that model's SAELens folder")
        folder = TOY_SAE_DIR / where[4:]
        if not folder.is_dir():
            known = ", ".join(sorted(p.name for p in TOY_SAE_DIR.iterdir())) if TOY_SAE_DIR.is_dir() else "none"
            raise CircuitdbError(f"no toy SAE {where[4:]!r} (shipped: {known}; `circuitdb toy train-sae` makes them)")
        sae, source = _from_folder(folder), f"circuitdb toy SAE {where[4:]}"
    elif Path(where).expanduser().exists() or where.startswith((".", "/", "~")):
        sae, source = _from_folder(Path(where).expanduser()), str(where)
    else:
        sae, source = _from_release(where), f"SAELens release {where}"
    hook = hook_name(sae.cfg.hook_name if isinstance(sae, FolderSAE) else sae.cfg.metadata.hook_name, lm)
    if sae.cfg.d_in != lm.model.cfg.d_model:
        raise CircuitdbError(f"SAE {spec} reads width {sae.cfg.d_in}, model {lm.name} has d_model {lm.model.cfg.d_model}")
    layer_ok = _HOOK.match(hook or "") and hook_layer(hook) < lm.model.cfg.n_layers
    if not layer_ok:
        raise CircuitdbError(f"SAE {spec} hooks {hook!r}, which model {lm.name} does not have")
    for parameter in sae.parameters():
        parameter.requires_grad_(False)
    return Dictionary(name or dictionary_name(hook), hook, sae.to(lm.model.cfg.device).eval(), source)


def hook_name(hook: str | None, lm: LoadedModel) -> str | None:
    """An SAE's hook in the HookedTransformer names discovery uses. An SAE saved on a TransformerBridge names the
    bridge's own hook points (`blocks.1.hook_in`); on a bridge model they translate as that model wires them (its
    `hook_mlp_out` may be a norm's output), on a HookedTransformer where every model agrees (block input and output)."""
    if hook is None or _HOOK.match(hook):
        return hook
    if isinstance(lm.model, BridgeModel):
        return next((alias for alias, own in lm.model.hook_aliases().items() if own == hook and _HOOK.match(alias)), hook)
    block, _, point = hook.partition(".")[2].partition(".")
    return f"blocks.{block}.{_BRIDGE_NAMES[point]}" if hook.startswith("blocks.") and point in _BRIDGE_NAMES else hook


def _from_folder(folder: Path) -> torch.nn.Module:
    """An SAE saved in SAELens's layout, by SAELens's own loader where it is installed; or a clear error."""
    if not (folder / "cfg.json").is_file():
        raise CircuitdbError(f"{folder}: not an SAELens folder (no cfg.json)")
    try:
        from sae_lens import SAE
    except ImportError:
        return read_folder(folder)
    try:
        return SAE.load_from_disk(folder)
    except Exception as exc:  # any config or weight problem means the same to the user: this folder is unusable
        raise CircuitdbError(f"{folder}: unreadable SAE ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from exc


def _from_release(spec: str) -> torch.nn.Module:
    """A pretrained SAELens release `RELEASE/SAE_ID`; refused at once without SAELens or when the hub cannot be used."""
    release, _, sae_id = spec.partition("/")
    if not sae_id:
        raise CircuitdbError(f"SAE {spec!r}: use toy:NAME, a local SAELens folder, or RELEASE/SAE_ID")
    try:
        from sae_lens import SAE
    except ImportError:
        raise CircuitdbError(f"SAE {spec}: pretrained releases are listed by SAELens, which is not installed; "
                             f"use a local SAELens folder") from None
    why = hub_unavailable()
    if why:
        raise CircuitdbError(f"SAE {spec} must be downloaded from the Hugging Face hub, but {why}; use a local SAELens folder")
    try:
        return SAE.from_pretrained(release, sae_id)
    except Exception as exc:  # unknown release/id, or the download failed
        raise CircuitdbError(f"SAE {spec}: could not load ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from exc


def residuals(lm: LoadedModel, tokens: torch.Tensor, lengths: torch.Tensor, hook: str) -> torch.Tensor:
    """Activations `[tokens, d_model]` at `hook` over every real position after BOS (BOS is a constant outlier)."""
    out = []
    with torch.no_grad():
        for lo in range(0, tokens.shape[0], 512):
            _, cache = lm.model.run_with_cache(tokens[lo:lo + 512], names_filter=hook,
                                               stop_at_layer=hook_layer(hook) + 1)
            acts, n = cache[hook], lengths[lo:lo + 512]
            keep = (torch.arange(acts.shape[1])[None, :] < n[:, None]) & (torch.arange(acts.shape[1])[None, :] > 0)
            out.append(acts[keep])
    return torch.cat(out)


def fvu(dictionary: Dictionary, x: torch.Tensor) -> tuple[float, float, float]:
    """(fraction of variance unexplained, dead fraction, mean L0) of the SAE on activations `x`."""
    with torch.no_grad():
        f = dictionary.encode(x)
        error = (dictionary.decode(f) - x).pow(2).sum()
        variance = (x - x.mean(0)).pow(2).sum()
        return (error / variance).item(), (f.amax(0) <= 0).float().mean().item(), (f > 0).float().sum(-1).mean().item()


def train_sae(lm: LoadedModel, layer: int, train: torch.Tensor, heldout: torch.Tensor, seed: int = 0,
              progress: Callable[[int, int], None] | None = None, steps: int = STEPS) -> tuple[Dictionary, dict]:
    """A ReLU SAE (`EXPANSION` x d_model) on `train` activations at `blocks.L.hook_resid_pre`: MSE + L1 x decoder norm.

    Decoder rows start as unit vectors with the encoder their transpose and b_dec at the data mean; Adam, fixed steps,
    one thread, so a seed gives the same dictionary. The report holds FVU, dead fraction and L0 on `heldout`.
    """
    started, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        generator = torch.Generator().manual_seed(seed)
        d = train.shape[1]
        hook = lm.graph.blocks[layer].resid_pre
        sae = FolderSAE(SAEConfig(d_in=d, d_sae=EXPANSION * d, hook_name=hook))
        with torch.no_grad():
            w = torch.randn(EXPANSION * d, d, generator=generator)
            sae.W_dec.copy_(w / w.norm(dim=-1, keepdim=True))
            sae.W_enc.copy_(sae.W_dec.T)
            sae.b_enc.zero_()
            sae.b_dec.copy_(train.mean(0))
        scale = (train - train.mean(0)).pow(2).sum(-1).mean()
        optimizer = torch.optim.Adam(sae.parameters(), lr=LR)
        for step in range(1, steps + 1):
            x = train[torch.randint(0, train.shape[0], (BATCH,), generator=generator)]
            f = sae.encode(x)
            mse = (sae.decode(f) - x).pow(2).sum(-1).mean() / scale
            loss = mse + L1 * (f * sae.W_dec.norm(dim=-1)).sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if progress and step % 100 == 0:
                progress(step, steps)
        dictionary = Dictionary(dictionary_name(hook), hook, sae.eval(), "circuitdb toy SAE")
        for parameter in sae.parameters():
            parameter.requires_grad_(False)
        unexplained, dead, l0 = fvu(dictionary, heldout)
        report = {"layer": layer, "hook": hook, "d_sae": EXPANSION * d, "steps": steps, "seed": seed,
                  "seconds": round(time.perf_counter() - started, 1), "fvu": round(unexplained, 4),
                  "dead_fraction": round(dead, 4), "l0": round(l0, 2), "n_train_tokens": train.shape[0],
                  "n_heldout_tokens": heldout.shape[0]}
    finally:
        torch.set_num_threads(threads)
    return dictionary, report


def save_dictionary(dictionary: Dictionary, report: dict, folder: Path) -> None:
    """SAELens files (`cfg.json`, `sae_weights.safetensors`) plus circuitdb's training report."""
    write_folder(dictionary.sae, folder)
    (folder / "report.json").write_text(json.dumps(report, indent=1) + "\n")


def train_toy_saes(lm: LoadedModel, seed: int = 0, folder: Path = TOY_SAE_DIR,
                   progress: Callable[[int, int], None] | None = None, steps: int = STEPS) -> list[dict]:
    """Train and save the toy SAEs (one per `TOY_LAYERS`) on the toy model's own training prompts; their reports."""
    from circuitdb.discovery.toy import example_tensors, toy_codec, toy_dataset

    train, heldout = (example_tensors(toy_codec(), part) for part in toy_dataset(seed))
    reports = []
    for layer in TOY_LAYERS:
        hook = lm.graph.blocks[layer].resid_pre
        dictionary, report = train_sae(lm, layer, residuals(lm, train[0], train[1], hook),
                                       residuals(lm, heldout[0], heldout[1], hook), seed, progress, steps)
        save_dictionary(dictionary, report, folder / dictionary.name)
        reports.append(report)
    return reports


def train_and_save_saes(model: str = "toy", seed: int = 0, folder: Path | None = None,
                        reporter: Reporter | None = None, steps: int = STEPS) -> list[dict]:
    """`toy train-sae`: retrain the toy SAEs of `model` into `folder` (default: the shipped ones, for the toy model only);
    each report names its folder."""
    if model != "toy" and folder is None:
        raise CircuitdbError("give -o FOLDER for another model's SAEs (the shipped ones belong to the toy model)")
    if steps < 1:
        raise CircuitdbError(f"--steps must be at least 1, got {steps}")
    folder = folder or TOY_SAE_DIR
    advance = (reporter or Reporter()).start("training the toy SAEs")
    reports = train_toy_saes(load_model(model), seed, folder, lambda step, total: advance(1), steps)
    return [{**r, "folder": folder / f"resid{r['layer']}"} for r in reports]
