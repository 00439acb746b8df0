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
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))  # peer_common.py, beside this script
from peer_common import device_name, random_model, require, run, start, timed  # noqa: E402

NEEDS = "torch and transformers"
(torch,) = require(NEEDS, "torch")


def main():
    import transformers  # noqa: F401  (first, so that a missing transformers is reported before stdin is read)

    spec = json.load(sys.stdin)
    device, cuda, info = start(spec, ["transformers"])
    torch.manual_seed(1)
    model, _ = random_model(spec["config_dir"], device)
    model.eval()

    def timed_generate(ids, new_tokens):
        def call():
            with torch.inference_mode():
                return model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    pad_token_id=0,  # the byte tokenizer's <pad>; nothing is padded, this only silences the warning
                    use_cache=True,
                )

        seconds, out = timed(call, device)
        if out.shape[1] != ids.shape[1] + new_tokens:
            raise RuntimeError(f"generate returned {out.shape[1] - ids.shape[1]} new tokens, not {new_tokens}")
        return seconds

    rows = []
    n = spec["new_tokens"]
    for batch in spec["batches"]:
        ids = torch.tensor(spec["prompt_ids"][:batch], dtype=torch.long, device=device)
        timed_generate(ids, 4)
        whole, prefill = [], []
        for _ in range(spec["repeats"]):
            whole.append(timed_generate(ids, n))
            prefill.append(timed_generate(ids, 1))
        w, p = statistics.median(whole), statistics.median(prefill)
        rows.append({"batch": batch, "whole_s": w, "prefill_s": p, "tokens_per_sec": batch * n / w, "decode_tokens_per_sec": batch * (n - 1) / (w - p)})
    return {
        "rows": rows,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "device_name": device_name(device),
        "versions": info,
    }


if __name__ == "__main__":
    run(main, NEEDS)
