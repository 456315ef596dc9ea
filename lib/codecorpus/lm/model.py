"""A compact GPT-2 of our own: the same architecture, parameters and arithmetic as transformers'
GPT2LMHeadModel, written for speed.

Why not GPT2LMHeadModel itself: profiled on the H200 (docs/gpu-run.md) its attention hands
strided q/k/v views to SDPA, the loss goes through a `loss_type=None` branch that breaks the
compiled graph in two, and the fp32 upcast of the logits moves 4 GiB per micro-batch. Here one
Linear makes q, k and v, the layout SDPA wants is chosen explicitly (`contiguous_qkv`), the
whole forward *and* the loss are one graph for torch.compile, and the loss reads bf16 logits
(or none at all, with liger-kernel's fused linear + cross-entropy).

State dicts convert both ways (`from_hf`, `to_hf`): a model is trained here and saved as a plain
GPT2LMHeadModel directory, so generate / pipeline / HumanEval load it like any Hugging Face model;
`lm.fastgen` loads such a directory back into this class to decode with a static KV cache.
Same keys as GPT2LMHeadModel; only HF's Conv1D weights are stored transposed ((in, out)).

This module is torch through and through, so it imports torch at the top: import it only inside
functions that need a model (train, fastgen), never from CPU stages.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The HF modules whose 2-D weights are Conv1D, i.e. stored as (in, out): transposed on conversion.
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
SDPA_BACKENDS = ("auto", "cudnn", "flash", "efficient", "math")


class Attention(nn.Module):
    def __init__(self, d: int, n_head: int, contiguous_qkv: bool):
        super().__init__()
        self.n_head, self.head_dim = n_head, d // n_head
        self.contiguous_qkv = contiguous_qkv
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def _qkv(self, x):
        b, t, _ = x.shape
        qkv = self.c_attn(x).view(b, t, 3, self.n_head, self.head_dim)
        if self.contiguous_qkv:  # one copy into (3, B, H, T, D): each of q, k, v dense in SDPA's layout
            return qkv.permute(2, 0, 3, 1, 4).contiguous().unbind(0)
        return [z.transpose(1, 2) for z in qkv.unbind(2)]  # strided views, as GPT2Attention passes them

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))

    def cached(self, x, cache_k, cache_v, slot, mask):
        """Attention for new tokens `x` (B, S, d) against a static cache (B, H, Tmax, D): their
        keys and values are written at positions `slot` (S indices, a device tensor, so that a
        CUDA graph can replay it), then each query attends where `mask` (B, 1, S, Tmax) is True."""
        b, s, d = x.shape
        q, k, v = self._qkv(x)
        cache_k.index_copy_(2, slot, k.to(cache_k.dtype))
        cache_v.index_copy_(2, slot, v.to(cache_v.dtype))
        y = F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).reshape(b, s, d))


class MLP(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's "gelu_new"


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, eps: float, contiguous_qkv: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, n_head, contiguous_qkv)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def cached(self, x, cache_k, cache_v, slot, mask):
        x = x + self.attn.cached(self.ln_1(x), cache_k, cache_v, slot, mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2: token + position embeddings, pre-LayerNorm blocks, final LayerNorm, an output
    layer tied to the token embedding. `loss` is "torch" (bf16 logits, fp32 cross-entropy inside
    the compiled graph) or "liger" (fused linear + cross-entropy: no logits tensor at all)."""

    def __init__(self, vocab_size: int, n_positions: int, n_embd: int, n_layer: int, n_head: int,
                 eps: float = 1e-5, contiguous_qkv: bool = True, loss: str = "torch", bf16_residual: bool = False):
        super().__init__()
        self.shape = {"vocab_size": vocab_size, "n_positions": n_positions, "n_embd": n_embd,
                      "n_layer": n_layer, "n_head": n_head}
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab_size, n_embd), "wpe": nn.Embedding(n_positions, n_embd),
            "h": nn.ModuleList(Block(n_embd, n_head, eps, contiguous_qkv) for _ in range(n_layer)),
            "ln_f": nn.LayerNorm(n_embd, eps=eps)})
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.loss_impl = loss
        # Under bf16 autocast the residual stream is fp32 (the embeddings' dtype): every LayerNorm
        # and residual add then moves 4-byte activations. bf16_residual casts it once, after the
        # embeddings (as Megatron-LM does by default); LayerNorm still computes in fp32.
        self.bf16_residual = bf16_residual
        self._liger = None

    def hidden(self, idx, pos=None):
        """Final hidden states (B, T, d) of token ids (B, T); positions 0..T-1 unless given."""
        tr = self.transformer
        if pos is None:
            pos = torch.arange(idx.shape[1], device=idx.device)
        x = tr.wte(idx) + tr.wpe(pos)
        if self.bf16_residual and torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.bfloat16)
        for block in tr.h:
            x = block(x)
        return tr.ln_f(x)

    def forward(self, idx, targets=None):
        """Logits (B, T, V) without targets; with them, the mean next-token loss. The last position
        predicts nothing, so it never reaches the output layer (no slicing copy of the logits)."""
        if targets is None:
            return self.lm_head(self.hidden(idx))
        return self.head_loss(self.hidden(idx)[:, :-1], targets[:, 1:])

    def head_loss(self, h, targets):
        h, targets = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
        if self.loss_impl == "liger":
            return self.liger()(self.lm_head.weight, h, targets)
        return F.cross_entropy(self.lm_head(h).float(), targets)

    def liger(self):
        if self._liger is None:
            try:
                from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
            except ImportError as exc:  # an optional lever: say what is missing
                raise RuntimeError("lm.loss = 'liger' needs the liger-kernel package") from exc
            self._liger = LigerFusedLinearCrossEntropyLoss()
        return self._liger

    # ------------------------------------------------------------ decoding with a static cache

    def cached_logits(self, idx, pos, caches, slot, mask):
        """Logits of the last position for tokens `idx` (B, S) at positions `pos` (B, S), reading
        and filling `caches` (one (k, v) pair of (B, H, Tmax, D) per layer) at `slot`."""
        tr = self.transformer
        x = tr.wte(idx) + tr.wpe(pos)
        for block, (ck, cv) in zip(tr.h, caches):
            x = block.cached(x, ck, cv, slot, mask)
        return self.lm_head(tr.ln_f(x[:, -1]))

    def new_cache(self, batch: int, length: int, dtype, device):
        s = self.shape
        hd = s["n_embd"] // s["n_head"]
        return [tuple(torch.zeros(batch, s["n_head"], length, hd, dtype=dtype, device=device) for _ in range(2))
                for _ in range(s["n_layer"])]


# ---------------------------------------------------------------- conversion from/to GPT2LMHeadModel

def from_hf(hf_model, contiguous_qkv: bool = True, loss: str = "torch", bf16_residual: bool = False) -> GPT:
    """A GPT holding a copy of a GPT2LMHeadModel's weights (same device and dtype)."""
    c = hf_model.config
    if c.activation_function != "gelu_new" or getattr(c, "scale_attn_by_inverse_layer_idx", False) \
            or getattr(c, "reorder_and_upcast_attn", False):
        raise ValueError("only GPT-2's standard attention and gelu_new are implemented")
    p = next(hf_model.parameters())
    with torch.device("meta"):
        gpt = GPT(c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head, c.layer_norm_epsilon,
                  contiguous_qkv, loss, bf16_residual)
    gpt.to_empty(device=p.device).to(p.dtype)
    gpt.lm_head.weight = gpt.transformer.wte.weight  # to_empty made new tensors: tie again
    gpt.load_state_dict(convert_state_dict(hf_model.state_dict(), transpose=True))
    return gpt


def to_hf(gpt: GPT, hf_config):
    """A GPT2LMHeadModel (on the CPU, float32) with the weights of `gpt`."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(hf_config)
    sd = {k: v.detach().float().cpu() for k, v in gpt.state_dict().items()}
    hf.load_state_dict(convert_state_dict(sd, transpose=True), strict=False)
    hf.tie_weights()
    missing = [k for k in hf.state_dict() if k not in sd and not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing:
        raise ValueError(f"weights missing for {missing[:3]}")
    return hf


def convert_state_dict(sd: dict, transpose: bool) -> dict:
    """GPT2LMHeadModel <-> GPT keys are the same; Conv1D weights are transposed either way. HF's
    non-persistent causal-mask buffers, if present, are left out."""
    out = {}
    for k, v in sd.items():
        if k.endswith(("attn.bias", "attn.masked_bias")) and v.ndim != 1:
            continue
        out[k] = v.t().contiguous() if transpose and k.endswith(_CONV1D) else v
    return out


def set_sdpa_backend(name: str) -> None:
    """Allow only the named SDPA kernel (process-wide; torch.compile reads it when it traces).
    "auto" leaves PyTorch's own priority order (cuDNN first on Hopper, then flash, ...)."""
    if name not in SDPA_BACKENDS:
        raise ValueError(f"SDPA backend {name!r}: one of {', '.join(SDPA_BACKENDS)}")
    b = torch.backends.cuda
    # a named backend alone, math too off: a shape it cannot run is an error, not a silent fallback
    for backend, enable in (("cudnn", b.enable_cudnn_sdp), ("flash", b.enable_flash_sdp),
                            ("efficient", b.enable_mem_efficient_sdp), ("math", b.enable_math_sdp)):
        enable(name in ("auto", backend))
