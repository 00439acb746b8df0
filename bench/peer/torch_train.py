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
"""
import json
import statistics
import sys
import time
import traceback

MISSING = "missing Python package: {} (this peer needs torch and transformers, and peft for LoRA rows)"
try:
    import torch
except ImportError as error:  # one JSON line, so the caller reports what is missing
    print(json.dumps({"error": MISSING.format(error.name)}))
    sys.exit(0)


def versions():
    out = {"torch": torch.__version__, "cuda": str(torch.version.cuda), "python": sys.version.split()[0]}
    for name in ("transformers", "peft"):
        try:
            out[name] = __import__(name).__version__
        except Exception as error:  # reported, not fatal: full fine-tuning needs no peft
            out[name] = f"unavailable: {error}"
    return out


def dtype_kwarg(transformers):
    """transformers 4.56 renamed torch_dtype to dtype (the old name is deprecated)."""
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def build(spec, device):
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(spec["config_dir"])
    config.use_cache = False
    with device:  # initialise on the device: no host copy of 8b weights
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **{dtype_kwarg(transformers): torch.bfloat16})
    model.to(torch.bfloat16)  # a no-op unless the dtype keyword was ignored
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
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    info = versions()
    print(f"torch peer: {json.dumps(info)}", file=sys.stderr)
    torch.manual_seed(spec["seed"])
    model, config = build(spec, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=cuda)
    batch, seq = spec["micro_batch"], spec["seq"]
    generator = torch.Generator().manual_seed(spec["seed"])

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def step():
        ids = torch.randint(0, config.vocab_size, (batch, seq), generator=generator).to(device)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times, loss = [], float("nan")
    for _ in range(spec["warmup"] + spec["steps"]):
        start = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times[spec["warmup"]:])
    adapter = next((p for n, p in model.named_parameters() if "lora_" in n), None)
    return {
        "tokens_per_sec": batch * seq / median,
        "median_step_s": median,
        "step_s": times,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "reserved_memory_bytes": torch.cuda.max_memory_reserved(device) if cuda else None,
        "weights_dtype": str(model.get_input_embeddings().weight.dtype).replace("torch.", ""),
        "adapter_dtype": str(adapter.dtype).replace("torch.", "") if adapter is not None else None,
        "trainable_params": sum(p.numel() for p in params),
        "final_loss": loss,
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
