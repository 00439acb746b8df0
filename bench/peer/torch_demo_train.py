#!/usr/bin/env python3
"""PyTorch CPU side of bench/demo-cpu-train.ts: the demo's training step in plain PyTorch.

Reads one configuration as JSON on stdin (the model shape, the optimizer settings, a file of packed
batches written by the bench, the thread count) and prints one JSON line: tokens/s from the median
timed step, and tokens per CPU-second of the process over the timed steps. The step is what seqtune's trainer does on the same batches: a LLaMA (RMSNorm, RoPE on
each document's own positions, causal attention that never crosses a document boundary, SwiGLU,
untied head), mean cross-entropy over the labelled tokens (labels come already shifted, -100 is
ignored), backward, clip_grad_norm_ at max_grad_norm, AdamW, a cosine schedule with warmup, and
the loss read to the host every step.

torch 1.13 has no variable-length attention, so two forms are offered and the bench keeps the
faster: "mask" (one packed row, a block-diagonal causal mask over all its tokens: exact GEMMs, a
full T x T score matrix) and "docs" (attention per document: exact FLOPs, more small ops).
"""
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))  # peer_common.py, beside this script
from peer_common import require, run  # noqa: E402

NEEDS = "torch (Debian: apt-get install python3-torch)"
(torch,) = require(NEEDS, "torch")
F = torch.nn.functional


class RMSNorm(torch.nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    """RoPE in the rotate-half convention (transformers' LLaMA): x [T, H, D], cos/sin [T, 1, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.heads, self.head_dim = c["num_heads"], h // c["num_heads"]
        self.attn_norm = RMSNorm(h, c["rms_norm_eps"])
        self.q, self.k, self.v, self.o = (torch.nn.Linear(h, h, bias=False) for _ in range(4))
        self.mlp_norm = RMSNorm(h, c["rms_norm_eps"])
        self.gate = torch.nn.Linear(h, i, bias=False)
        self.up = torch.nn.Linear(h, i, bias=False)
        self.down = torch.nn.Linear(i, h, bias=False)

    def attention(self, x, rope, docs, mask):
        t = x.shape[0]
        shape = (t, self.heads, self.head_dim)
        q = rotate(self.q(x).view(shape), *rope)
        k = rotate(self.k(x).view(shape), *rope)
        v = self.v(x).view(shape)
        scale = 1.0 / math.sqrt(self.head_dim)
        if mask is not None:
            q, k, v = (a.transpose(0, 1) for a in (q, k, v))  # [H, T, D]
            p = torch.softmax(q @ k.transpose(1, 2) * scale + mask, dim=-1)
            return self.o((p @ v).transpose(0, 1).reshape(t, -1))
        outs = []
        for start, end in docs:
            qd, kd, vd = (a[start:end].transpose(0, 1) for a in (q, k, v))
            n = end - start
            causal = torch.full((n, n), float("-inf")).triu(1)
            p = torch.softmax(qd @ kd.transpose(1, 2) * scale + causal, dim=-1)
            outs.append((p @ vd).transpose(0, 1).reshape(n, -1))
        return self.o(torch.cat(outs))

    def forward(self, x, rope, docs, mask):
        x = x + self.attention(self.attn_norm(x), rope, docs, mask)
        y = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = torch.nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = torch.nn.ModuleList(Layer(c) for _ in range(c["num_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.head = torch.nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        head_dim = c["hidden_size"] // c["num_heads"]
        self.inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim))
        for name, p in self.named_parameters():
            if not name.endswith("norm.weight"):
                torch.nn.init.normal_(p, std=0.02)  # as seqtune's demo initialises

    def forward(self, ids, positions, docs, mask):
        angles = positions.float()[:, None] * self.inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)[:, None, :]
        rope = (angles.cos(), angles.sin())
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, rope, docs, mask)
        return self.head(self.norm(x))


def block_causal_mask(docs, t):
    mask = torch.full((t, t), float("-inf"))
    for start, end in docs:
        mask[start:end, start:end] = torch.full((end - start, end - start), float("-inf")).triu(1)
    return mask


def main():
    spec = json.load(sys.stdin)
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    c = spec["model"]
    with open(spec["batches_file"]) as f:
        raw = json.load(f)
    batches = []
    for b in raw:
        cu = b["cu_seqlens"]
        docs = list(zip(cu[:-1], cu[1:]))
        t = len(b["input_ids"])
        # the batch's own tensors are built before timing, as seqtune's loader builds them
        batches.append({
            "ids": torch.tensor(b["input_ids"]),
            "labels": torch.tensor(b["labels"]),
            "positions": torch.tensor(b["position_ids"]),
            "docs": docs,
            "mask": block_causal_mask(docs, t) if spec["attention"] == "mask" else None,
            "tokens": t,
        })
    model = Llama(c)
    o = spec["optimizer"]
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    total, warmup = len(batches), math.ceil(spec["warmup_ratio"] * len(batches))

    def schedule(step):  # linear warmup from 0, then cosine to 0, as lib/train/schedule.ts
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step_s, step_cpu_s, losses = [], [], []
    for b in batches:
        started, cpu_started = time.perf_counter(), time.process_time()
        logits = model(b["ids"], b["positions"], b["docs"], b["mask"])
        loss = F.cross_entropy(logits, b["labels"], ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"])
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step_s.append(time.perf_counter() - started)
        step_cpu_s.append(time.process_time() - cpu_started)
    timed = list(range(spec["warmup_steps"], len(batches)))
    rates = [batches[i]["tokens"] / step_s[i] for i in timed]
    return {
        "tokens_per_sec": statistics.median(rates),
        # every thread of the process; steadier than wall time on a loaded machine
        "tokens_per_cpu_sec": sum(batches[i]["tokens"] for i in timed) / sum(step_cpu_s[i] for i in timed),
        "median_step_s": statistics.median(step_s[i] for i in timed),
        "step_s": step_s,
        "final_loss": losses[-1],
        "first_loss": losses[0],
        "params": sum(p.numel() for p in params),
        "attention": spec["attention"],
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
    }


if __name__ == "__main__":
    run(main, NEEDS)
