#!/usr/bin/env python3
"""transformers side of bench/generate.ts (run on the GPU machine, which has it).

Reads the configuration as JSON on stdin and prints one JSON line. The model is built from
CONFIG_DIR/config.json (seqtune wrote it) with random weights in bf16 and
attn_implementation="sdpa"; model.generate runs greedy (do_sample=False, num_beams=1) with its
default KV cache on the given prompt ids (all the same length, so no padding), with
min_new_tokens = max_new_tokens so EOS never ends a sequence early, as on seqtune's side. Per batch
size: one warm-up call, then the median of `repeats` whole calls and of `repeats` one-token calls
(the prefill), each between CUDA synchronisations.
"""
import json
import statistics
import sys
import time
import traceback

MISSING = "missing Python package: {} (this peer needs torch and transformers)"
try:
    import torch
except ImportError as error:  # one JSON line, so the caller reports what is missing
    print(json.dumps({"error": MISSING.format(error.name)}))
    sys.exit(0)


def versions():
    out = {"torch": torch.__version__, "cuda": str(torch.version.cuda), "python": sys.version.split()[0]}
    try:
        out["transformers"] = __import__("transformers").__version__
    except Exception as error:
        out["transformers"] = f"unavailable: {error}"
    return out


def dtype_kwarg(transformers):
    """transformers 4.56 renamed torch_dtype to dtype (the old name is deprecated)."""
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def main():
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = json.load(sys.stdin)
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    info = versions()
    print(f"torch peer: {json.dumps(info)}", file=sys.stderr)
    torch.manual_seed(1)
    config = AutoConfig.from_pretrained(spec["config_dir"])
    with device:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **{dtype_kwarg(transformers): torch.bfloat16})
    model.to(torch.bfloat16).eval()

    def timed(ids, new_tokens):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=0,  # the byte tokenizer's <pad>; nothing is padded, this only silences the warning
                use_cache=True,
            )
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        if out.shape[1] != ids.shape[1] + new_tokens:
            raise RuntimeError(f"generate returned {out.shape[1] - ids.shape[1]} new tokens, not {new_tokens}")
        return seconds

    rows = []
    n = spec["new_tokens"]
    for batch in spec["batches"]:
        ids = torch.tensor(spec["prompt_ids"][:batch], dtype=torch.long, device=device)
        timed(ids, 4)
        whole, prefill = [], []
        for _ in range(spec["repeats"]):
            whole.append(timed(ids, n))
            prefill.append(timed(ids, 1))
        w, p = statistics.median(whole), statistics.median(prefill)
        rows.append({"batch": batch, "whole_s": w, "prefill_s": p, "tokens_per_sec": batch * n / w, "decode_tokens_per_sec": batch * (n - 1) / (w - p)})
    return {
        "rows": rows,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "versions": info,
    }


if __name__ == "__main__":
    try:
        result = main()
    except ImportError as error:  # transformers or peft: one line, no traceback
        result = {"error": MISSING.format(error.name)}
    except Exception as error:  # one JSON line either way, so the caller records why
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
    print(json.dumps(result))
