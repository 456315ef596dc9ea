"""Fast decoding for our GPT-2 models: a static KV cache, the decode step replayed as a CUDA graph,
all prompts x sequences in one batch.

Why: decoding a 110M model one token at a time is bound by per-step overhead, not arithmetic
(about 10 ms a step through `generate` on the H200, whatever the batch: docs/gpu-run.md). The
step's ~150 kernels cost a few microseconds each to launch from Python; replayed from a CUDA
graph they are launched by the GPU, and the cache is preallocated so the graph's addresses stay
valid. Prefill (the prompts) runs eagerly once; sampling runs eagerly after each replay.

A model directory (GPT2LMHeadModel, as `lm.train` saves it) is loaded into `lm.model.GPT`.
Left padding works as in `generate`: positions count real tokens only and padded keys are
masked, so a row's tokens do not depend on the other rows' lengths (under exact arithmetic;
bf16 kernels of other shapes round differently, which greedy decoding can expose: the equality
checks in `lm.generate.greedy_equality` run in float32 as well).
"""
from __future__ import annotations

from dataclasses import dataclass

PAD_TO = 16  # the memory-efficient SDPA kernel wants the mask's last dimension aligned to 16


@dataclass(frozen=True)
class Sampler:
    """Next-token choice: greedy, or temperature / top-k / top-p sampling (as `generate` does)."""
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def choose(self, logits, generator):
        import torch

        if not self.do_sample:
            return logits.argmax(dim=-1)
        logits = logits / self.temperature
        if self.top_k:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            # transformers' rule: drop the smallest tokens whose cumulative probability <= 1 - top_p
            sorted_logits, order = torch.sort(logits, dim=-1)
            cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            drop = cum <= 1 - self.top_p
            drop[:, -1] = False  # always keep the most likely token
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


class _Graph:
    """The decode step for one (batch, cache length): static inputs, cache and a captured graph."""

    def __init__(self, gpt, batch: int, length: int, dtype, device, use_graph: bool):
        import torch

        self.gpt, self.use_graph = gpt, use_graph
        self.cache = gpt.new_cache(batch, length, dtype, device)
        self.valid = torch.zeros(batch, length, dtype=torch.bool, device=device)  # keys written so far
        self.tok = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.logits = None
        self.graph = None

    def body(self):
        self.valid.index_fill_(1, self.slot, True)
        self.logits = self.gpt.cached_logits(self.tok, self.pos, self.cache, self.slot,
                                             self.valid[:, None, None, :])
        return self.logits

    def capture(self) -> None:
        """Warm up on a side stream (as CUDA graphs require), then capture one step. The warm-up
        writes the cache at the current slot, which the first real step overwrites."""
        import torch

        if not self.use_graph:
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self.body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.body()

    def step(self):
        if self.graph is None:
            return self.body()
        self.graph.replay()
        return self.logits


class FastGenerator:
    """Batched decoding of a `lm.model.GPT` (eval mode). CUDA graphs on CUDA unless turned off;
    on the CPU the same code runs eagerly (tests compare it with `generate` there)."""

    def __init__(self, gpt, eos_id: int, use_graphs: bool = True):
        self.gpt, self.eos_id = gpt, eos_id
        p = next(gpt.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.use_graphs = use_graphs and self.device.type == "cuda"
        self._graph: tuple | None = None  # (key, _Graph): the last shape only (a cache can be GBs)

    def _graph_for(self, batch: int, length: int) -> _Graph:
        key = (batch, length)
        if self._graph is None or self._graph[0] != key:
            self._graph = None  # free the old cache before allocating the new one
            self._graph = (key, _Graph(self.gpt, batch, length, self.dtype, self.device, self.use_graphs))
        return self._graph[1]

    def release(self) -> None:
        self._graph = None

    def generate_ids(self, ids, mask, max_new_tokens: int, sampler: Sampler = Sampler(), seed: int = 42,
                     min_new_tokens: int = 0):
        """New token ids (B, max_new_tokens) for left-padded prompts `ids`/`mask` (B, S), on the CPU.
        EOS is suppressed until `min_new_tokens`; rows are not stopped at EOS (cut them after)."""
        import torch
        from torch.nn.attention import SDPBackend, sdpa_kernel

        ids, mask = ids.to(self.device), mask.to(self.device).bool()
        b, s = ids.shape
        length = -(-(s + max_new_tokens) // PAD_TO) * PAD_TO
        gen = torch.Generator(device=self.device).manual_seed(seed)
        out = torch.empty(b, max_new_tokens, dtype=torch.long, device=self.device)
        # masked attention: the kernels that take an arbitrary mask (cuDNN / flash take none here)
        with torch.no_grad(), sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
            g = self._graph_for(b, length)
            logits = self._prefill(g, ids, mask)
            next_pos = mask.sum(dim=1, keepdim=True)  # real tokens: left padding does not count
            g.slot.fill_(s)
            g.tok.copy_(ids[:, -1:])
            g.pos.copy_(next_pos)
            if g.graph is None and g.use_graph:
                g.capture()
            for i in range(max_new_tokens):
                if i < min_new_tokens:
                    logits = logits.float().index_fill(1, torch.tensor([self.eos_id], device=self.device),
                                                       float("-inf"))
                tok = sampler.choose(logits.float(), gen)
                out[:, i] = tok
                if i + 1 == max_new_tokens:
                    break
                g.tok.copy_(tok[:, None])
                g.pos.copy_(next_pos + i)
                g.slot.fill_(s + i)
                logits = g.step()
        return out.cpu()

    def _prefill(self, g: _Graph, ids, mask):
        """Run the prompts through the model once, filling the cache's first S positions."""
        import torch

        s = ids.shape[1]
        length = g.valid.shape[1]
        g.valid.zero_()
        g.valid[:, :s] = mask
        pos = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
        q = torch.arange(s, device=self.device)
        k = torch.arange(length, device=self.device)
        causal = k[None, :] <= q[:, None]
        attend = (causal[None] & g.valid[:, None, :]) | (k[None, None, :] == q[None, :, None])
        # every query sees itself, so a padding row never attends to nothing (its output is unused)
        return self.gpt.cached_logits(ids, pos, g.cache, q, attend[:, None])


def load(path: str, device=None, dtype=None, use_graphs: bool = True):
    """(FastGenerator, tokenizer) for a model directory."""
    from codecorpus.lm.generate import device_and_dtype, load_model, load_tokenizer
    from codecorpus.lm.model import from_hf

    dev, dt = device_and_dtype(device)
    tok = load_tokenizer(path)
    hf = load_model(path, dev, dtype or dt)
    gpt = from_hf(hf).eval()
    del hf
    return FastGenerator(gpt, tok.eos_token_id, use_graphs), tok
