#!/usr/bin/env python3
"""Benchmark peer for bench/kernels.ts: times PyTorch (cuBLAS) on the same GPU products seqtune
measures, with CUDA events, after warm-up, as the median of several timed batches.

usage: torch_kernels.py SPEC.json OUT.json
SPEC: {"device": "cuda:0", "cases": [...]} with cases
  {"kind": "matmul", "name", "M", "N", "K", "transA", "transB"}         c = op(a) @ op(b), bf16
  {"kind": "lora_fwd" | "lora_bwd", "name", "T", "in", "out", "r", "scale"}
  {"kind": "lce_fwd" | "lce_bwd", "name", "T", "C", "V"}               linear + cross_entropy
OUT: {"torch": version, "cuda": version, "device": name, "cases": [{"name", "ms"} | {"name", "error"}]}
The inputs are random normal (never zeros: they time differently); FLOP counts are the caller's.
"device": "cpu" times with perf_counter instead of CUDA events (a plumbing check, not a benchmark).
"""
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as error:
    sys.exit(f"torch_kernels.py: torch is not installed ({error}); pip install torch")

WARMUP = 3
BATCHES = 7
MIN_BATCH_MS = 25.0


class Timer:
    """CUDA events on a GPU; on the CPU, perf_counter (the work is synchronous there)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.start_event, self.end_event = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def start(self):
        if self.cuda:
            self.start_event.record()
        else:
            self.t0 = time.perf_counter()

    def stop(self) -> float:
        """Milliseconds since start(), once the queued work has finished."""
        if not self.cuda:
            return (time.perf_counter() - self.t0) * 1e3
        self.end_event.record()
        self.end_event.synchronize()
        return self.start_event.elapsed_time(self.end_event)


def time_ms(fn, device) -> float:
    """Median milliseconds of fn over BATCHES event-timed batches (batch size calibrated to ~25 ms)."""
    for _ in range(WARMUP):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    timer = Timer(device)
    timer.start()
    fn()
    per_call = max(timer.stop(), 1e-3)
    batch = max(1, min(50, int(MIN_BATCH_MS / per_call)))
    times = []
    for _ in range(BATCHES):
        timer.start()
        for _ in range(batch):
            fn()
        times.append(timer.stop() / batch)
    return statistics.median(times)


def randn(*shape, device, scale=1.0):
    return torch.randn(*shape, device=device, dtype=torch.bfloat16) * scale


def matmul_case(c, device):
    m, n, k = c["M"], c["N"], c["K"]
    a = randn(*((k, m) if c["transA"] else (m, k)), device=device)
    b = randn(*((n, k) if c["transB"] else (k, n)), device=device)
    oa = a.t() if c["transA"] else a
    ob = b.t() if c["transB"] else b
    return lambda: torch.matmul(oa, ob)


def lora_case(c, device):
    t, i, o, r, s = c["T"], c["in"], c["out"], c["r"], c["scale"]
    x = randn(t, i, device=device)
    w = randn(o, i, device=device, scale=i ** -0.5)
    a = randn(r, i, device=device, scale=i ** -0.5)
    b = randn(o, r, device=device, scale=0.5)
    if c["kind"] == "lora_fwd":
        return lambda: F.linear(x, w) + s * F.linear(F.linear(x, a), b)
    dy = randn(t, o, device=device)
    xa = F.linear(x, a)

    def backward():
        dxa = s * (dy @ b)
        return dy @ w + dxa @ a, dxa.t() @ x, s * (dy.t() @ xa)

    return backward


def lce_case(c, device):
    t, ch, v = c["T"], c["C"], c["V"]
    h = randn(t, ch, device=device).requires_grad_(c["kind"] == "lce_bwd")
    w = randn(v, ch, device=device, scale=ch ** -0.5).requires_grad_(c["kind"] == "lce_bwd")
    labels = torch.randint(0, v, (t,), device=device)
    labels[::8] = -100

    def loss():
        return F.cross_entropy(F.linear(h, w).float(), labels, ignore_index=-100)

    if c["kind"] == "lce_fwd":
        return lambda: loss().detach()
    # Backward alone: the forward (and its stored logits) happen outside the timed region.
    for _ in range(WARMUP):
        loss().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    timer = Timer(device)
    times = []
    for _ in range(BATCHES):
        h.grad = w.grad = None
        l = loss()
        timer.start()
        l.backward()
        times.append(timer.stop())
    return statistics.median(times)


def main() -> None:
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    device = torch.device(spec["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch_kernels.py: {device} requested but torch {torch.__version__} sees no CUDA device")
    if device.type == "cuda":  # a cuBLAS setting (and an unknown attribute to torch 1.x)
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
    results = []
    for c in spec["cases"]:
        try:
            with torch.no_grad() if c["kind"] != "lce_bwd" else torch.enable_grad():
                if c["kind"] == "matmul":
                    ms = time_ms(matmul_case(c, device), device)
                elif c["kind"].startswith("lora"):
                    ms = time_ms(lora_case(c, device), device)
                elif c["kind"] == "lce_fwd":
                    ms = time_ms(lce_case(c, device), device)
                else:
                    ms = lce_case(c, device)
            results.append({"name": c["name"], "ms": ms})
        except torch.cuda.OutOfMemoryError as e:
            results.append({"name": c["name"], "error": f"out of memory: {str(e).splitlines()[0]}"})
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"{c['name']}: {results[-1]}", file=sys.stderr, flush=True)
    out = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cases": results,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
