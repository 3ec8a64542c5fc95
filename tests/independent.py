"""An independent evaluator of head/MLP edge circuits for the tests (and benchmarks/circuits.py): plain
TransformerLens hooks, TL's own per-head results (hook_result), one subtraction per removed edge, autograd for EAP.
It shares no code with circuitdb's discovery."""

from __future__ import annotations

import torch


class Independent:
    """One model x task x intervention, measured with TL's own per-head results and a hook per receiver input."""

    def __init__(self, model, data, intervention: str, metric: str = "logit_diff") -> None:
        self.model, self.data, self.cfg = model, data, model.cfg
        self.mlps = not self.cfg.attn_only
        self.norm = getattr(model, "ln_final", lambda x: x)  # a LayerNorm-free model has none
        # Gemma 2 normalizes the attention output (Gemma2RMSNorm: x / sqrt(mean(x^2) + eps) * (1 + weight)); a head's
        # output is then its share of that: its result times 1 + weight over the RMS of all heads' results
        bridge = getattr(model, "bridge", None)
        posts = [getattr(getattr(b, "ln1_post", None), "original_component", None) for b in bridge.blocks] if bridge else []
        self.post = [(1 + p.weight.detach(), p.eps) if p is not None else None for p in posts] or [None] * self.cfg.n_layers
        self.rows = torch.arange(data.n)
        outputs = self.outputs(data.corrupt)
        groups = data.templates

        def per_template(t: torch.Tensor) -> torch.Tensor:  # each prompt gets the mean over its template's prompts
            return torch.stack([t[groups == groups[i]].mean(0) for i in range(len(groups))])

        reduce = {"mean": lambda t: t.mean(0, keepdim=True), "zero": lambda t: torch.zeros_like(t[:1]),
                  "patch": lambda t: t, "mean-per-template": per_template}[intervention]
        self.refs = {name: reduce(value) for name, value in outputs.items()}
        _, corrupt = model.run_with_cache(data.corrupt, names_filter=lambda n: n.endswith("attn.hook_z"))
        self.ref_z = [reduce(corrupt[f"blocks.{layer}.attn.hook_z"]) for layer in range(self.cfg.n_layers)]
        self.metric = metric
        with torch.no_grad():
            self.full_logprobs = self.logits(self.final(set(), data.clean)).log_softmax(-1)
            self.full = self.value(self.final(set(), data.clean))
            everything = {(s, r, q) for s, r, q in self.all_edges()}
            self.base = self.value(self.final(everything, data.clean)) if metric == "kl" else 0.0

    def settings(self, on: bool) -> None:
        self.model.set_use_attn_result(on)
        self.model.set_use_split_qkv_input(on)

    def outputs(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every sender's output by name: `input`, `aL.hH` (hook_result), `mL`."""
        self.settings(True)
        try:
            _, cache = self.model.run_with_cache(tokens)
        finally:
            self.settings(False)
        out = {"input": cache["blocks.0.hook_resid_pre"]}
        for layer in range(self.cfg.n_layers):
            result = self.shares(cache[f"blocks.{layer}.attn.hook_result"], layer)
            for h in range(self.cfg.n_heads):
                out[f"a{layer}.h{h}"] = result[:, :, h]
            if self.mlps:
                out[f"m{layer}"] = cache[f"blocks.{layer}.hook_mlp_out"]
        return out

    def shares(self, result: torch.Tensor, layer: int) -> torch.Tensor:
        """Per-head results `[N, pos, heads, d]` as what each head adds to the residual stream."""
        if self.post[layer] is None:
            return result
        gain, eps = self.post[layer]
        return result * gain / (result.sum(2).pow(2).mean(-1, keepdim=True) + eps).sqrt()[:, :, None]

    def final(self, removed: set[tuple[str, str, str]], tokens: torch.Tensor, x0: torch.Tensor | None = None,
              grads: dict | None = None, nodes: set[str] | None = None) -> torch.Tensor:
        """The final residual stream with every edge of `removed` at its reference, one edge at a time; `x0` replaces
        the embedding; `grads` collects each receiver input (requiring grad) for autograd; every head and MLP not in
        `nodes` (when given) ablated itself: a head's z, an MLP's output at its reference."""
        live: dict[str, torch.Tensor] = {}
        by_receiver: dict[tuple[str, str], list[str]] = {}
        for sender, receiver, qkv in removed:
            by_receiver.setdefault((receiver, qkv), []).append(sender)

        def cut(x: torch.Tensor, receiver: str, qkv: str) -> torch.Tensor:
            for sender in by_receiver.get((receiver, qkv), []):
                x = x - (live[sender] - self.refs[sender])
            return x

        def embed_hook(x, hook):
            x = x if x0 is None else x0
            live["input"] = x
            return x

        hooks = [("blocks.0.hook_resid_pre", embed_hook)]
        for layer in range(self.cfg.n_layers):
            def result(x, hook, layer=layer):
                x = self.shares(x, layer)
                for h in range(self.cfg.n_heads):
                    live[f"a{layer}.h{h}"] = x[:, :, h]

            def mlp_out(x, hook, layer=layer):
                if nodes is not None and f"m{layer}" not in nodes:
                    x = self.refs[f"m{layer}"].expand_as(x)
                live[f"m{layer}"] = x
                return x

            def z(x, hook, layer=layer):
                out = [h for h in range(self.cfg.n_heads) if f"a{layer}.h{h}" not in nodes]
                x = x.clone()
                x[:, :, out] = self.ref_z[layer][:, :, out].expand_as(x[:, :, out])
                return x

            def qkv_input(x, hook, layer=layer):
                qkv = hook.name.split(".")[-1][5]  # hook_q_input -> q
                parts = [cut(x[:, :, h], f"a{layer}.h{h}", qkv) for h in range(self.cfg.n_heads)]
                if grads is not None:
                    for h, part in enumerate(parts):
                        part.retain_grad()
                        grads[f"a{layer}.h{h}", qkv] = part
                return torch.stack(parts, dim=2)

            def mlp_in(x, hook, layer=layer):
                # a copy: a TransformerBridge hands over the residual stream itself, whose gradient includes the skip path
                x = cut(x.clone(), f"m{layer}", "")
                if grads is not None:
                    x.retain_grad()
                    grads[f"m{layer}", ""] = x
                return x

            hooks += [(f"blocks.{layer}.hook_{q}_input", qkv_input) for q in "qkv"]
            hooks.append((f"blocks.{layer}.attn.hook_result", result))
            hooks += [(f"blocks.{layer}.attn.hook_z", z)] if nodes is not None else []
            if self.mlps:
                hooks += [(f"blocks.{layer}.hook_mlp_in", mlp_in), (f"blocks.{layer}.hook_mlp_out", mlp_out)]

        def logits_in(x, hook):
            x = cut(x, "logits", "")
            if grads is not None:
                x.retain_grad()
                grads["logits", ""] = x
            return x

        hooks.append((f"blocks.{self.cfg.n_layers - 1}.hook_resid_post", logits_in))
        self.settings(True)
        try:
            with self.model.hooks(fwd_hooks=hooks):
                return self.model(tokens, stop_at_layer=self.cfg.n_layers)
        finally:
            self.settings(False)

    def all_edges(self) -> list[tuple[str, str, str]]:
        """Every edge of the model: each earlier node into each head's q, k, v, each MLP (which reads the block's input
        when attention and MLP run in parallel) and the logits."""
        senders, out = ["input"], []
        for layer in range(self.cfg.n_layers):
            heads = [f"a{layer}.h{h}" for h in range(self.cfg.n_heads)]
            out += [(s, h, q) for h in heads for q in "qkv" for s in senders]
            if self.mlps:
                out += [(s, f"m{layer}", "") for s in (senders if self.cfg.parallel_attn_mlp else [*senders, *heads])]
            senders = [*senders, *heads] + ([f"m{layer}"] if self.mlps else [])
        return out + [(s, "logits", "") for s in senders]

    def logits(self, final: torch.Tensor) -> torch.Tensor:
        """Last-position logits as the model outputs them (Gemma 2 squashes them into (-cap, cap))."""
        logits = self.model.unembed(self.norm(final))[:, -1]
        cap = getattr(self.cfg, "output_logits_soft_cap", 0) or 0
        return cap * torch.tanh(logits / cap) if cap > 0 else logits

    def value(self, final: torch.Tensor) -> torch.Tensor:
        """The metric: mean logit difference, mean p(answer), or minus the mean KL(full || circuit)."""
        if self.metric == "logit_diff":
            return self.logit_diff(final)
        logprobs = self.logits(final).log_softmax(-1)
        if self.metric == "prob":
            return logprobs[self.rows, self.data.answers].exp().mean()
        return -(self.full_logprobs.exp() * (self.full_logprobs - logprobs)).sum(-1).mean()

    def logit_diff(self, final: torch.Tensor) -> torch.Tensor:
        logits = self.logits(final)
        return (logits[self.rows, self.data.answers] - logits[self.rows, self.data.distractors]).mean()

    def faithfulness(self, kept: set) -> float:
        """The edge circuit `kept` evaluated jointly: every other edge of the model removed."""
        with torch.no_grad():
            value = self.value(self.final(set(self.all_edges()) - kept, self.data.clean))
            return ((value - self.base) / (self.full - self.base)).item()

    def path_patching(self, graph, names: set[str], edge_keys: list) -> dict:
        """Each edge's drop: the node circuit (every other head and MLP ablated itself, as node pruning does) minus
        the same with that one edge at its reference too."""
        with torch.no_grad():
            base = self.value(self.final(set(), self.data.clean, nodes=names))
            drops = {key: base - self.value(self.final({key}, self.data.clean, nodes=names)) for key in edge_keys}
        return {key: (drop / (self.full - self.base)).item() for key, drop in drops.items()}

    def eap(self, ig_steps: int = 0) -> dict:
        """Per edge, -(reference - clean output of the sender) . d LD / d receiver input, summed over positions,
        averaged over prompts and IG steps (the embedding interpolated from its reference), over LD(full)."""
        clean = self.outputs(self.data.clean)
        alphas = [1.0] if ig_steps == 0 else [(k + 1) / ig_steps for k in range(ig_steps)]
        total: dict = {}
        for alpha in alphas:
            x0 = (self.refs["input"] + alpha * (clean["input"] - self.refs["input"])).expand_as(clean["input"]).clone()
            x0.requires_grad_(True)
            grads: dict = {}
            self.value(self.final(set(), self.data.clean, x0, grads)).backward()
            for (receiver, qkv), tensor in grads.items():
                total[receiver, qkv] = total.get((receiver, qkv), 0) + tensor.grad / len(alphas)
        return {(s, r, q): -((self.refs[s] - clean[s]) * total[r, q]).sum().item() / (self.full - self.base).item()
                for s, r, q in self.all_edges()}


def feature_faithfulness(model, dicts, data, kept: set[str]) -> float:
    """A feature circuit's faithfulness measured with the SAEs' encode/decode in plain hooks on `model` (a
    HookedTransformer, or a bare TransformerBridge), references recomputed here."""
    hooks = [d.hook for d in dicts]
    _, corrupt = model.run_with_cache(data.corrupt, names_filter=lambda n: n in hooks)

    def make(d):
        x_c = corrupt[d.hook]
        f_ref = d.sae.encode(x_c).mean(0)
        err_ref = (x_c - d.sae.decode(d.sae.encode(x_c))).mean(0)
        keep = torch.tensor([f"f{d.name}/{i}" in kept for i in range(d.size)])

        def hook(x, hook):
            f = d.sae.encode(x)
            err = x - d.sae.decode(f)
            f = torch.where(keep, f, f_ref)
            err = err if f"f{d.name}/err" in kept else err_ref.expand_as(err)
            return d.sae.decode(f) + err

        return hook

    with torch.no_grad():
        logits = model.run_with_hooks(data.clean, fwd_hooks=[(d.hook, make(d)) for d in dicts])
        full = model(data.clean)
    rows = torch.arange(data.n)

    def ld(out):
        return (out[rows, -1, data.answers] - out[rows, -1, data.distractors]).mean().item()

    return ld(logits) / ld(full)
