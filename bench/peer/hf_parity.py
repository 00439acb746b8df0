#!/usr/bin/env python3
"""transformers + peft side of the seqtune parity check (run on the GPU machine, which has both).

  python3 bench/peer/hf_parity.py make WORK    random tiny Llama and Qwen2 saved with save_pretrained,
                                                a PEFT LoRA with A and B both non-zero, and the
                                                reference logits, loss and LoRA gradients (WORK/ref.json)
  node dist/bench/hf-parity.js WORK            seqtune loads the same files, compares, saves its adapter
  python3 bench/peer/hf_parity.py check WORK   peft loads seqtune's adapter; outputs compared

Everything in float32 on the CPU, so the comparison tests the model math, not kernels.
"""
import json
import os
import sys

try:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
except ImportError as error:
    sys.exit(f"hf_parity.py: missing Python package: {error.name} (it needs torch, transformers and peft)")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def config(arch):
    common = dict(vocab_size=97, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=256,
                  tie_word_embeddings=(arch == "qwen2"), bos_token_id=1, eos_token_id=2)
    return (Qwen2Config(**common, use_sliding_window=False), Qwen2ForCausalLM) if arch == "qwen2" else (LlamaConfig(**common), LlamaForCausalLM)


def make(work):
    torch.manual_seed(1234)
    out = {"torch": torch.__version__, "cases": {}}
    for arch in ["llama", "qwen2"]:
        cfg, cls = config(arch)
        model = cls(cfg).float().eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                # Far from the default 0.02 init so the network is clearly non-linear.
                p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else 0.2 * torch.randn_like(p))
        base_dir = os.path.join(work, arch, "base")
        model.save_pretrained(base_dir, safe_serialization=True)
        ids = torch.randint(0, cfg.vocab_size, (2, 13))
        with torch.no_grad():
            base_logits = model(ids).logits
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.copy_(0.1 * torch.randn_like(p))  # A and B both non-zero, so the check can fail
        peft_model.train()
        result = peft_model(ids, labels=ids)
        result.loss.backward()
        grads = {n: p.grad.flatten().tolist() for n, p in peft_model.named_parameters() if "lora_" in n}
        peft_model.save_pretrained(os.path.join(work, arch, "adapter"))
        out["cases"][arch] = {
            "ids": ids.tolist(),
            "base_logits": base_logits.flatten().tolist(),
            "lora_logits": result.logits.detach().flatten().tolist(),
            "loss": result.loss.item(),
            "grads": grads,
        }
    with open(os.path.join(work, "ref.json"), "w") as f:
        json.dump(out, f)


def check(work):
    with open(os.path.join(work, "seqtune.json")) as f:
        ours = json.load(f)
    report = {}
    for arch, case in ours["cases"].items():
        cfg, cls = config(arch)
        base = cls.from_pretrained(os.path.join(work, arch, "base"), torch_dtype=torch.float32).eval()
        model = PeftModel.from_pretrained(base, os.path.join(work, arch, "seqtune-adapter")).eval()
        with torch.no_grad():
            logits = model(torch.tensor(case["ids"])).logits.flatten()
        theirs = torch.tensor(case["lora_logits"])
        report[arch] = {"adapter_logits_rel_err": ((logits - theirs).norm() / theirs.norm()).item()}
    print(json.dumps(report))
    with open(os.path.join(work, "peft-check.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
