#!/usr/bin/env python3
"""transformers + peft side of bench/train-parity.ts (run on the GPU machine, which has them).

Reads {"work": DIR, "device": "cuda:0"} on stdin; DIR holds what seqtune wrote: model/ (init-model
checkpoint, bf16), adapter-init/ (seqtune's fresh adapter), batches.i32 ([steps, batch, seq] int32),
plan.json (per-step learning rates, AdamW settings, probe ids), adapter-trained/ and
probe-logits.f32 ([probe, vocab] float32). Then:

  1. trains adapter-init (PeftModel.from_pretrained(is_trainable=True); peft keeps the adapters in
     f32 over the bf16 base) for the same steps on the same batches with labels=input_ids,
     torch.optim.AdamW(fused=True) at seqtune's per-step learning rates and clip_grad_norm_;
  2. loads seqtune's adapter-trained into a fresh base and compares its logits on the probe ids with
     seqtune's, and its lora_B weights with the ones torch trained.

Prints one JSON line: the loss and grad-norm curves, the comparisons and the versions it ran with.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))  # peer_common.py, beside this script
from peer_common import bf16_kwargs, device_name, require, run, start  # noqa: E402

NEEDS = "numpy, torch, transformers and peft"
np, torch = require(NEEDS, "numpy", "torch")


def load_base(model_dir, device):
    import transformers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa", **bf16_kwargs(transformers))
    return model.to(device=device, dtype=torch.bfloat16)


def main():
    from peft import PeftModel

    spec = json.load(sys.stdin)
    work = spec["work"]
    device, cuda, info = start(spec, ["transformers", "peft"], required=True, numpy=np.__version__)
    with open(os.path.join(work, "plan.json")) as f:
        plan = json.load(f)
    steps, batch, seq = plan["steps"], plan["micro_batch"], plan["seq"]
    ids = np.fromfile(os.path.join(work, "batches.i32"), dtype="<i4").reshape(steps, batch, seq)
    model_dir = os.path.join(work, "model")

    base = load_base(model_dir, device)
    model = PeftModel.from_pretrained(base, os.path.join(work, "adapter-init"), is_trainable=True)
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    expected = base.config.num_hidden_layers * len(plan["targets"]) * 2
    if len(named) != expected or any("lora_" not in n for n, _ in named):
        raise RuntimeError(f"expected {expected} trainable LoRA tensors, got {len(named)}: {[n for n, _ in named][:4]}")
    params = [p for _, p in named]
    optimizer = torch.optim.AdamW(params, lr=plan["lrs"][0], betas=tuple(plan["betas"]), eps=plan["eps"], weight_decay=plan["weight_decay"], fused=cuda)
    losses, norms = [], []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = plan["lrs"][step]
        x = torch.from_numpy(ids[step]).long().to(device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, plan["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        norms.append(norm.item())
        print(f"torch step {step + 1}: loss {losses[-1]:.6f} |g| {norms[-1]:.4f}", file=sys.stderr)
    adapter_dtype = str(params[0].dtype).replace("torch.", "")
    trained_b = {n: p.detach().float() for n, p in named if "lora_B" in n}
    del model, base, optimizer, params, named
    if cuda:
        torch.cuda.empty_cache()

    # seqtune's trained adapter as a peft user would load it.
    base = load_base(model_dir, device)
    model = PeftModel.from_pretrained(base, os.path.join(work, "adapter-trained")).eval()
    base_dtype = str(model.get_input_embeddings().weight.dtype).replace("torch.", "")
    ours_b = {n: p.detach().float() for n, p in model.named_parameters() if "lora_B" in n}
    if set(ours_b) != set(trained_b):
        raise RuntimeError("the two adapters name their lora_B tensors differently")
    diff = sum((ours_b[n] - trained_b[n]).pow(2).sum() for n in trained_b).sqrt()
    scale = sum(t.pow(2).sum() for t in trained_b.values()).sqrt()
    probe = torch.tensor(plan["probe_ids"], dtype=torch.long, device=device)[None]
    with torch.no_grad():
        logits = model(input_ids=probe).logits[0].float().cpu()
    ours = torch.from_numpy(np.fromfile(os.path.join(work, "probe-logits.f32"), dtype="<f4").reshape(logits.shape))
    return {
        "losses": losses,
        "grad_norms": norms,
        "probe_logits_rel_err": ((ours - logits).norm() / logits.norm()).item(),
        "probe_argmax_agreement": (ours.argmax(-1) == logits.argmax(-1)).float().mean().item(),
        "lora_b_rel_diff": (diff / scale).item(),
        "adapter_dtype": adapter_dtype,
        "base_dtype": base_dtype,
        "versions": info,
        "device_name": device_name(device),
    }


if __name__ == "__main__":
    run(main, NEEDS)
