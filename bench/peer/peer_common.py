"""What the torch peers of bench/generate.ts, bench/train.ts and bench/train-parity.ts share.

Each peer is run as `python3 bench/peer/NAME.py`, reads its configuration as JSON on stdin and
prints one JSON line on stdout, `{"error": ...}` when it cannot run, so the caller (runChild in
bench/common/child.ts) records why. A peer imports this module from its own directory:

    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    from peer_common import ...

This module imports torch and transformers only inside its functions, so that a peer's
require() can name a missing package in that one JSON line instead of a traceback.
"""
import importlib
import json
import sys
import time
import traceback

MISSING = "missing Python package: {} (this peer needs {})"


def require(needs, *modules):
    """The modules, imported in order; where one is missing, the one JSON line naming it and exit 0.

    `needs` says what the peer needs, e.g. "torch and transformers".
    """
    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as error:  # one JSON line, so the caller reports what is missing
        print(json.dumps({"error": MISSING.format(error.name, needs)}))
        sys.exit(0)


def run(main, needs):
    """Runs main() and prints its result, or the error it raised, as one JSON line."""
    try:
        result = main()
    except ImportError as error:  # transformers or peft: one line, no traceback
        result = {"error": MISSING.format(error.name, needs)}
    except Exception as error:  # one JSON line either way, so the caller records why
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
    print(json.dumps(result))


def versions(packages, required=False, **extra):
    """torch, CUDA and Python versions, then `extra`, then each of `packages`' versions.

    A package that cannot be imported is reported as "unavailable: ..." unless `required`, where
    the error propagates (run() turns an ImportError into the missing-package line).
    """
    import torch

    out = {"torch": torch.__version__, "cuda": str(torch.version.cuda), "python": sys.version.split()[0], **extra}
    for name in packages:
        try:
            out[name] = __import__(name).__version__
        except Exception as error:  # reported, not fatal: full fine-tuning needs no peft
            if required:
                raise
            out[name] = f"unavailable: {error}"
    return out


def start(spec, packages, required=False, **extra):
    """(device, cuda, versions) for spec["device"]; the versions (see versions()) are logged on stderr."""
    import torch

    device = torch.device(spec["device"])
    info = versions(packages, required, **extra)
    print(f"torch peer: {json.dumps(info)}", file=sys.stderr)
    return device, device.type == "cuda", info


def bf16_kwargs(transformers):
    """The from_config/from_pretrained keyword for bf16: transformers 4.56 renamed torch_dtype to dtype (the old name is deprecated)."""
    import torch

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {("dtype" if (major, minor) >= (4, 56) else "torch_dtype"): torch.bfloat16}


def random_model(config_dir, device, **config_overrides):
    """(model, config): CONFIG_DIR/config.json's shapes with random bf16 weights made on the device, attn_implementation="sdpa"."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_dir)
    for name, value in config_overrides.items():
        setattr(config, name, value)
    with device:  # initialise on the device: no host copy of 8b weights
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **bf16_kwargs(transformers))
    model.to(torch.bfloat16)  # a no-op unless the dtype keyword was ignored
    return model, config


def synchronize(device):
    """Waits for the work queued on a CUDA device (nothing to wait for on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(seconds, fn()): host time of fn() between two device synchronisations."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def device_name(device):
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
