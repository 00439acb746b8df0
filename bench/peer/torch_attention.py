"""Peer for bench/attention.ts: times torch.nn.functional.scaled_dot_product_attention, bf16, with
its FLASH_ATTENTION and CUDNN_ATTENTION backends (torch.nn.attention.sdpa_kernel), forward and
backward, on the shapes given as a JSON list on stdin ({id, length, batch, heads, kv_heads,
head_dim, causal}): q [batch, heads, length, D], k and v with kv_heads (grouped-query attention
through enable_gqa when fewer than heads). bench/attention pads packed documents to the longest
and asks for that. Prints one JSON object as its last line: torch version, device name, and per
shape (by id) the median milliseconds of each backend (null with a reason in `errors` when a
backend cannot run it). A benchmark-only peer, never a dependency of seqtune.

    echo '[{"id": 0, "length": 2048, "batch": 8, "heads": 32, "kv_heads": 8, "head_dim": 128, "causal": true}]' \
        | python3 bench/peer/torch_attention.py --device 0
"""

import argparse
import json
import sys


def median_ms(torch, fn, warmup=3, reps=20):
    """Median of `reps` CUDA-event timings of fn(), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def time_backend(torch, sdpa, backend, shape, device):
    """(forward ms, backward ms) of one backend on one shape; raises if the backend refuses it."""
    from torch.nn.attention import sdpa_kernel

    b, h, n, d = shape["batch"], shape["heads"], shape["length"], shape["head_dim"]
    hkv = shape.get("kv_heads", h)
    gen = torch.Generator(device=device).manual_seed(0)

    def randn(heads):
        return torch.randn((b, heads, n, d), device=device, dtype=torch.bfloat16, generator=gen)

    q, k, v, dout = randn(h), randn(hkv), randn(hkv), randn(h)
    for t in (q, k, v):
        t.requires_grad_(True)
    causal = shape["causal"]
    # enable_gqa (torch >= 2.5) only where it is needed, so older torch still runs the other rows.
    extra = {"enable_gqa": True} if hkv != h else {}
    with sdpa_kernel([backend]):
        with torch.no_grad():
            fwd = median_ms(torch, lambda: sdpa(q, k, v, is_causal=causal, **extra))
        out = sdpa(q, k, v, is_causal=causal, **extra)
        bwd = median_ms(torch, lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True))
    return fwd, bwd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="0", help="CUDA device index (cpu: refused, the backends timed are CUDA-only)")
    args = parser.parse_args()
    shapes = json.load(sys.stdin)
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend
    except ImportError as error:
        print(json.dumps({"error": f"torch with torch.nn.attention is not installed ({error})"}))
        return
    if not args.device.isdigit():
        print(json.dumps({"error": f"--device {args.device}: the flash and cuDNN SDPA backends need a CUDA device index"}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch sees no CUDA device"}))
        return
    device = torch.device("cuda", int(args.device))
    torch.cuda.set_device(device)
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    rows = []
    for shape in shapes:
        row = {"id": shape["id"], "errors": []}
        for name, backend in backends.items():
            try:
                fwd, bwd = time_backend(torch, F.scaled_dot_product_attention, backend, shape, device)
            except (RuntimeError, TypeError) as error:  # refused the shape, ran out of memory, or no enable_gqa
                fwd = bwd = None
                row["errors"].append(f"{name}: {str(error).splitlines()[0]}")
            row[f"{name}_fwd_ms"] = fwd
            row[f"{name}_bwd_ms"] = bwd
            torch.cuda.empty_cache()
        rows.append(row)
        print(f"# {row}", file=sys.stderr)
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device), "rows": rows}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
