#!/usr/bin/env python3
"""PyTorch + transformers + peft side of bench/train.ts (run on the GPU machine, which has them).

Reads one configuration as JSON on stdin and prints one JSON line: tokens/s from the median timed
step, peak memory (torch.cuda.max_memory_allocated: tensors only, like seqtune's peakBytes) and the
versions it ran with. Settings mirror seqtune's side: the shapes of CONFIG_DIR/config.json with
random weights in bf16, attn_implementation="sdpa", random tokens [micro_batch, seq] with
labels=input_ids, LoRA through peft (dropout 0; peft keeps the adapters in f32) or full
fine-tuning, torch.optim.AdamW(fused=True), clip_grad_norm_ at 1 as seqtune's trainer does, and
the loss read to the host every step as seqtune's trainer does. Activation checkpointing is
transformers' gradient_checkpointing_enable (non-reentrant).

With "compile": true the model (peft-wrapped for LoRA) runs under torch.compile (default mode,
dynamic=False: the shapes never change). Compilation happens in the first warm-up step; its wall
time is reported as compile_s (the warm-up steps all together as warmup_s) and the timed steps
after it run the compiled graphs, so tokens/s leaves compilation out.
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))  # peer_common.py, beside this script
from peer_common import device_name, random_model, require, run, start, synchronize, timed  # noqa: E402

NEEDS = "torch and transformers, and peft for LoRA rows"
(torch,) = require(NEEDS, "torch")


def build(spec, device):
    model, config = random_model(spec["config_dir"], device, use_cache=False)
    model.train()
    if spec["activation_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if spec["mode"] == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=spec["lora_r"], lora_alpha=spec["lora_alpha"], lora_dropout=0.0, target_modules=spec["targets"], bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    return model, config


def main():
    spec = json.load(sys.stdin)
    device, cuda, info = start(spec, ["transformers", "peft"])
    torch.manual_seed(spec["seed"])
    eager, config = build(spec, device)
    compiled = bool(spec.get("compile"))
    # the compiled wrapper shares eager's parameters; eager answers the questions about them
    model = torch.compile(eager, dynamic=False) if compiled else eager
    params = [p for p in eager.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=cuda)
    batch, seq = spec["micro_batch"], spec["seq"]
    generator = torch.Generator().manual_seed(spec["seed"])

    def step():
        ids = torch.randint(0, config.vocab_size, (batch, seq), generator=generator).to(device)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    synchronize(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times, loss = [], float("nan")
    for _ in range(spec["warmup"] + spec["steps"]):
        seconds, loss = timed(step, device)
        times.append(seconds)
    if compiled and spec["warmup"] < 1:
        raise ValueError("the torch.compile peer needs at least one warm-up step (it compiles there)")
    median = statistics.median(times[spec["warmup"]:])
    adapter = next((p for n, p in eager.named_parameters() if "lora_" in n), None)
    return {
        "tokens_per_sec": batch * seq / median,
        "median_step_s": median,
        "step_s": times,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "reserved_memory_bytes": torch.cuda.max_memory_reserved(device) if cuda else None,
        "weights_dtype": str(eager.get_input_embeddings().weight.dtype).replace("torch.", ""),
        "adapter_dtype": str(adapter.dtype).replace("torch.", "") if adapter is not None else None,
        "trainable_params": sum(p.numel() for p in params),
        "final_loss": loss,
        "device_name": device_name(device),
        "versions": info,
        **({"compiled": True, "compile_s": times[0], "warmup_s": sum(times[: spec["warmup"]])} if compiled else {}),
    }


if __name__ == "__main__":
    run(main, NEEDS)
