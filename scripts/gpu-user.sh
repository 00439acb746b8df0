#!/usr/bin/env bash
# `scripts/gpu.sh user`: a new user's whole path on the GPU in one command (< 2 min), the GPU smoke
# test. Every step is time-boxed and checked; the first failure stops the run with exit 1 and names
# the step. Steps:
#   1. a ~0.16B Llama (Llama-2 shapes at 8 layers, hidden 1024, GQA 16/8, vocab 32000) written by
#      transformers' save_pretrained in bf16 in several shards, with the Llama-2 tokenizer.json and
#      tokenizer_config.json (carried in .gpu/data by `gpu.sh prepare`);
#   2. seqtune augment on 2000 Alpaca examples;
#   3. seqtune train --preset sit-v1-lora --device cuda:0 for 24 steps, SIGINT once step 8's
#      checkpoint exists (exit 130, "stopped at step"), then the same command with --resume to 24;
#   4. seqtune generate without and with the adapter (default weights: bf16 on the GPU);
#   5. seqtune eval on MGSM (en) and XQuAD (trans vi) with --limit, with the adapter;
#   6. peft loads the adapter: lora_B tensors non-zero and the adapter changes the logits.
# SEQTUNE_USER_DEVICE=cpu is the dry run on a machine without a GPU: a tiny init-model checkpoint
# (byte tokenizer) instead of step 1, small batches, and step 6 skipped when transformers and peft
# are missing; everything else is the same commands.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-$root/bench/results}
device=${SEQTUNE_USER_DEVICE:-cuda:0}
data=${SEQTUNE_GPU_DATA:-$root/.gpu/data}
work=${SEQTUNE_USER_WORK:-/tmp/seqtune-user}
log="$out/user.log"
rm -rf "$work" && mkdir -p "$work" "$out"
: > "$log"
cli=(node dist/lib/cli.js)

say() { echo "$*" | tee -a "$log"; }
# step NAME SECONDS CMD...: runs CMD with its output in the log; fails the run loudly.
step() {
  local name=$1 limit=$2 start rc=0
  shift 2
  start=$(date +%s)
  say "+ [$name] $*"
  timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  say "  [$name] rc=$rc $(($(date +%s) - start))s"
  if [ "$rc" -ne 0 ]; then
    tail -20 "$log" | sed 's/^/  | /'
    say "FAIL user: step $name (rc $rc; 124: it ran past its ${limit}s)"
    exit 1
  fi
}
check() {  # check NAME CONDITION-COMMAND...: a check after a step
  local name=$1
  shift
  if ! "$@" >>"$log" 2>&1; then
    say "FAIL user: check $name"
    exit 1
  fi
  say "  ok $name"
}

for f in alpaca_small_2000.json llama2/tokenizer.json llama2/tokenizer_config.json mgsm/test/en.jsonl mgsm/examples/en.jsonl \
  xquad/xquad_trans_vi.json xquad/xquad_base_en.json; do
  [ -s "$data/$f" ] || { say "FAIL user: $data/$f missing (scripts/gpu.sh stage-data puts it there)"; exit 1; }
done

model="$work/model"
if [ "$device" = cpu ]; then
  step init-model 60 "${cli[@]}" init-model --preset tiny --out "$model" --seed 1 --quiet
  small=(--grad-accum 1 --val-size 16 --max-length 128)
else
  step write-model 60 python3 - "$model" "$data/llama2" <<'PY'
import shutil, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
out, tok = sys.argv[1], sys.argv[2]
cfg = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                  num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=2048,
                  rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(out, max_shard_size="100MB")
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{tok}/{f}", out)
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
PY
  check "several shards" test "$(ls "$model"/model-*-of-*.safetensors | wc -l)" -ge 2
  small=()
fi

step augment 30 "${cli[@]}" augment --in "$data/alpaca_small_2000.json" --out "$work/sit.jsonl" --strategy repeat --fraction 0.5 --mode add --seed 1
check "augmented data" test -s "$work/sit.jsonl"

run="$work/run"
train=("${cli[@]}" train --model "$model" --data "$work/sit.jsonl" --out "$run" --preset sit-v1-lora --max-steps 24 --save-every 8
  --device "$device" "${small[@]}")
say "+ [train-interrupted] ${train[*]} (SIGINT once checkpoints/step-000008 exists)"
start=$(date +%s)
"${train[@]}" >>"$log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -d "$run/checkpoints/step-000008" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
say "  [train-interrupted] rc=$rc $(($(date +%s) - start))s"
check "SIGINT exits 130" test "$rc" -eq 130
check "stopped with a checkpoint" grep -q "stopped at step" "$log"
step train-resume 90 "${train[@]}" --resume "$run"
check "24 steps done" grep -q "done: 24 steps" "$log"
check "adapter saved" test -s "$run/adapter/adapter_model.safetensors"

prompt="First repeat the input, then reverse it: stone"
step generate-base 60 "${cli[@]}" generate --model "$model" --template alpaca --prompt "$prompt" --max-new-tokens 16 --device "$device"
step generate-adapter 60 "${cli[@]}" generate --model "$model" --adapter "$run/adapter" --template alpaca --prompt "$prompt" --max-new-tokens 16 --device "$device"
[ "$device" = cpu ] || check "bf16 weights on the GPU" grep -q "^weights: bf16 on $device" "$log"

step eval-mgsm 60 "${cli[@]}" eval --model "$model" --adapter "$run/adapter" --bench mgsm --data "$data/mgsm/test/en.jsonl" --limit 16 \
  --batch-size 16 --max-new-tokens 32 --template alpaca --out "$work/eval-mgsm" --device "$device"
check "MGSM summary" test -s "$work/eval-mgsm/summary.json"
step eval-xquad 60 "${cli[@]}" eval --model "$model" --adapter "$run/adapter" --bench xquad --data "$data/xquad/xquad_trans_vi.json" --limit 16 \
  --batch-size 16 --max-new-tokens 32 --template alpaca --out "$work/eval-xquad" --device "$device"
check "XQuAD summary" test -s "$work/eval-xquad/summary.json"

if [ "$device" = cpu ] && ! python3 -c "import transformers, peft" 2>/dev/null; then
  say "  skipped peft: transformers and peft are not installed here (the GPU run does this step)"
else
  step peft 60 python3 - "$model" "$run/adapter" <<'PY'
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
model_dir, adapter = sys.argv[1], sys.argv[2]
base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
ids = torch.tensor([[1, 13866, 338, 385, 15278, 393, 16612, 263, 3414, 29889]]) % base.config.vocab_size
with torch.no_grad():
    before = base(ids).logits
model = PeftModel.from_pretrained(base, adapter)
nonzero = sum(1 for n, p in model.named_parameters() if "lora_B" in n and p.abs().max() > 0)
with torch.no_grad():
    after = model(ids).logits
rel = ((after - before).norm() / before.norm()).item()
print(f"peft loaded the adapter; lora_B tensors non-zero: {nonzero}; logits changed by the adapter, rel {rel:.3g}")
assert nonzero > 0, "every lora_B is zero: the adapter was not trained or not saved"
assert rel > 1e-4, "the adapter does not change the logits"
PY
fi
say "PASS user: ${SECONDS}s; log in $log"
