"""SAELens-format folders read and written without SAELens (`discovery/sae_format.py`), checked against SAELens's own
modules: what a folder encodes and decodes must not depend on which of the two read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sae_lens import SAE, JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

from circuitdb import Catalog
from circuitdb.discovery.sae_format import FolderSAE, SAEConfig, read_folder, write_folder
from circuitdb.errors import CircuitdbError

D_IN, D_SAE = 16, 48
HOOK = "blocks.1.hook_resid_pre"


def saelens_module(architecture: str, seed: int) -> torch.nn.Module:
    """A SAELens SAE of `architecture` with random weights (thresholds in the range the pre-activations take)."""
    metadata = SAEMetadata(hook_name=HOOK, model_name="toy")
    made = {
        "standard": lambda: StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, metadata=metadata)),
        "jumprelu": lambda: JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, metadata=metadata)),
        "topk": lambda: TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5, metadata=metadata)),
        "topk-rescaled": lambda: TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5, rescale_acts_by_decoder_norm=True,
                                                       metadata=metadata)),
        "no-b_dec-input": lambda: StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=False,
                                                                metadata=metadata)),
    }[architecture]()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in made.named_parameters():
            scale = 0.3 if name == "threshold" else 1.0
            parameter.copy_(torch.rand(parameter.shape, generator=generator) * scale if name == "threshold"
                            else torch.randn(parameter.shape, generator=generator) * scale)
    return made.eval()


ARCHITECTURES = ("standard", "jumprelu", "topk", "topk-rescaled", "no-b_dec-input")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_folder_saelens_wrote_encodes_and_decodes_as_saelens_does(tmp_path: Path, architecture: str) -> None:
    reference = saelens_module(architecture, seed=ARCHITECTURES.index(architecture))
    reference.save_model(tmp_path)
    ours = read_folder(tmp_path)
    assert ours.cfg.hook_name == HOOK
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        f = reference.encode(x)
        assert (f != 0).any() and (f == 0).any()  # a sparse code, so the activation function matters
        torch.testing.assert_close(ours.encode(x), f, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.decode(f), reference.decode(f), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("architecture", ["standard", "jumprelu", "topk"])
def test_a_folder_written_here_is_read_by_saelens_the_same(tmp_path: Path, architecture: str) -> None:
    ours = FolderSAE(SAEConfig(D_IN, D_SAE, HOOK, architecture, k=4 if architecture == "topk" else 0))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator).abs() * 0.2
                            if parameter.shape == (D_SAE,) and architecture == "jumprelu"
                            else torch.randn(parameter.shape, generator=generator))
    write_folder(ours, tmp_path)
    theirs = SAE.load_from_disk(tmp_path)
    assert theirs.cfg.metadata.hook_name == HOOK and theirs.cfg.architecture() == architecture
    x = torch.randn(32, D_IN, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), ours.encode(x), rtol=1e-5, atol=1e-6)


def write_broken(folder: Path, change: str) -> None:
    """A valid standard SAE folder, then `change` applied to it."""
    saelens_module("standard", 0).save_model(folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    if change == "architecture":
        cfg["architecture"] = "gated"
    elif change == "normalize":
        cfg["normalize_activations"] = "layer_norm"
    elif change == "d_sae":
        cfg["d_sae"] = D_SAE + 1
    elif change == "no d_in":
        del cfg["d_in"]
    elif change == "weights":
        (folder / "sae_weights.safetensors").write_bytes(b"not safetensors")
    (folder / "cfg.json").write_text("{" if change == "json" else json.dumps(cfg))


@pytest.mark.parametrize("change, message", [
    ("architecture", "architecture 'gated' needs SAELens installed"),
    ("normalize", "normalize_activations 'layer_norm' needs SAELens installed"),
    ("d_sae", r"W_enc has shape \[16, 48\], cfg.json implies \[16, 49\]"),
    ("no d_in", "cfg.json: no d_in"),
    ("json", "cfg.json: unreadable"),
    ("weights", "sae_weights.safetensors: unreadable"),
])
def test_a_folder_this_reader_cannot_use_is_one_line(tmp_path: Path, change: str, message: str) -> None:
    write_broken(tmp_path, change)
    with pytest.raises(CircuitdbError, match=message) as refused:
        read_folder(tmp_path)
    assert "\n" not in str(refused.value)


WITHOUT_SAELENS = """
import sys
sys.modules["sae_lens"] = None  # `import sae_lens` raises ImportError, as where transformer-lens 4 is installed
from circuitdb.cli import main
main(sys.argv[1:])
"""


def test_feature_discovery_without_saelens_finds_the_circuit_saelens_finds(tmp_path: Path) -> None:
    """The same features job twice, once with SAELens importable and once without: the same run, member for member."""
    job = ["features", "discover", "--model", "toy", "--sae", "toy:resid2", "--task", "digits", "--threshold", "0.8",
           "--prompts", "24"]
    runs = {}
    for name, code in (("with", "from circuitdb.cli import main; import sys; main(sys.argv[1:])"),
                       ("without", WITHOUT_SAELENS)):
        store = f"kuzu:{tmp_path / name}.kuzu"
        done = subprocess.run([sys.executable, "-c", code, *job, "--store", store], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        with Catalog(store, read_only=True) as catalog:
            (info,) = catalog.runs()
            runs[name] = catalog.run(info.id)
    assert runs["without"].id == runs["with"].id and runs["without"].components.keys() == runs["with"].components.keys()
    for name, score in runs["with"].components.items():  # scores are None where a member has none (logits)
        assert runs["without"].components[name] == (score if score is None else pytest.approx(score, rel=1e-5, abs=1e-7))
    assert sum(score is not None for score in runs["with"].components.values()) > 1
    released = subprocess.run([sys.executable, "-c", WITHOUT_SAELENS, *job[:5], "gpt2-small-res-jb/blocks.2.hook_resid_pre",
                               *job[6:], "--store", f"kuzu:{tmp_path / 'x.kuzu'}"], capture_output=True, text=True)
    assert released.returncode != 0 and "SAELens, which is not installed" in released.stderr + released.stdout
