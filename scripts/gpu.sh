#!/usr/bin/env bash
# The one script for GPU work, in commands of a few minutes each (device time is 30 minutes a
# session, 10 a command). Prepare here, then run each job on the device machine:
#
#   scripts/gpu.sh prepare            here: CUDA build (build-gpu/), TypeScript (dist/, with test/cases and the
#                                     GPU-only tap tests), and in .gpu/ the addon (xz: the sm_80 +
#                                     sm_90a fatbins make it ~40 MB raw), a slim production
#                                     node_modules (+ scripts/gpu-tap.js as tap) and the node binary
#   device run, carry [".gpu", "dist"]:
#     source .gpu/on-device.sh && scripts/gpu.sh tests       the GPU-only tap tests (cuda-wiring, device, Hopper GEMM and attention self-tests; < 1 min)
#     source .gpu/on-device.sh && scripts/gpu.sh parity      every op on the GPU vs the CPU (test/parity's harness)
#     source .gpu/on-device.sh && scripts/gpu.sh sanitize    the parity run under compute-sanitizer
#     source .gpu/on-device.sh && scripts/gpu.sh kernels     bench/kernels vs torch
#     source .gpu/on-device.sh && scripts/gpu.sh attention   bench/attention vs torch SDPA
#     source .gpu/on-device.sh && scripts/gpu.sh hf-parity   model and LoRA parity with transformers + peft
#                                     (f32 on the CPU: here only because the device has transformers + peft)
#     source .gpu/on-device.sh && scripts/gpu.sh train [ROWS [LAYERS]]  training tokens/s, MFU, peak
#                                     memory vs torch+peft; ROWS and LAYERS as bench/train.ts --rows, --layers;
#                                     one command each (< 8 min): train 1b:lora,1b:full (about 5 min),
#                                     train 8b:lora (about 4 min; train 8b:lora 8 measures an 8-layer slice)
#     source .gpu/on-device.sh && scripts/gpu.sh train-parity  20 LoRA steps, loss curves and adapter
#                                     logits vs peft on one init-model 1b checkpoint (about 4 min)
#     source .gpu/on-device.sh && scripts/gpu.sh generate [PRESETS]  greedy generation tokens/s vs
#                                     transformers' generate, batch 1 and 32 (1b,8b: about 4 min)
#     source .gpu/on-device.sh && scripts/gpu.sh user        a user's whole path (scripts/gpu-user.sh; < 2 min):
#                                     the GPU smoke test
#     source .gpu/on-device.sh && scripts/gpu.sh all         every job above, each time-boxed from one budget
#                                     (scripts/gpu-all.sh), everything tarred into $OUT/gpu-all.tar.gz
#     source .gpu/on-device.sh && scripts/gpu.sh bench NAME ARGS...  node dist/bench/NAME.js ARGS
#   scripts/gpu.sh stage-data         here: the data the user job reads (Llama-2 tokenizer, Alpaca, MGSM,
#                                     XQuAD) into .gpu/data; prepare does it too
#
# Results land in $OUT (fetched back) and are printed; log each run in bench/NOTES.md. Each script
# also runs here on the CPU with tiny settings (bench/NOTES.md, "CPU verification of the GPU scripts").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
job=${1:-}
out=${OUT:-$root/bench/results}
mkdir -p "$out"

# The files `user` reads, from ../shared/data into .gpu/data (about 8 MB; .gpu travels with the run).
stage_data() {
  local from=${SEQTUNE_SHARED_DATA:-$root/../shared/data} to=$root/.gpu/data
  rm -rf "$to" && mkdir -p "$to/llama2" "$to/mgsm/test" "$to/mgsm/examples" "$to/xquad"
  cp "$from/alpaca/alpaca_small_2000.json" "$to/"
  cp "$from/tokenizers/llama2/tokenizer.json" "$from/tokenizers/llama2/tokenizer_config.json" "$to/llama2/"
  cp "$from/seq_it_eval/mgsm/test/en.jsonl" "$to/mgsm/test/"
  cp "$from/seq_it_eval/mgsm/examples/en.jsonl" "$to/mgsm/examples/"
  cp "$from/seq_it_eval/test/xquad_trans_vi.json" "$from/seq_it_eval/test/xquad_base_en.json" "$to/xquad/"
  echo "staged $(du -sh "$to" | cut -f1) of data in .gpu/data"
}

on_device_env() {
  export NODE_PATH="$root/.gpu/prod/node_modules"
  export SEQTUNE_ADDON=/tmp/seqtune-gpu/seqtune.node
  if [ ! -s "$SEQTUNE_ADDON" ]; then
    mkdir -p /tmp/seqtune-gpu
    python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/seqtune.node.xz'), open('$SEQTUNE_ADDON','wb'))"
  fi
  node -e "const d = require('./dist/lib/device').devices(); console.log(JSON.stringify(d.gpus), d.cuda.unusableReason || '')"
}

case "$job" in
  prepare)
    [ -x "$(command -v nvcc)" ] || { echo "nvcc not found: the GPU build needs the CUDA toolkit here"; exit 1; }
    # Its own build folder with CUDA forced on: build/ may be configured CPU-only (SEQTUNE_CUDA=OFF
    # in its cache), which would send the device an addon without kernels.
    # SEQTUNE_CUDA_ARCHS=90a-real builds for the lent Hopper alone (about 4.5 min instead of 6+).
    npx cmake-js compile --config Release --out build-gpu --CDSEQTUNE_CUDA=ON "--CDSEQTUNE_CUDA_ARCHITECTURES=${SEQTUNE_CUDA_ARCHS:-portable}"
    npx tsc -p tsconfig.json
    SEQTUNE_ADDON="$root/build-gpu/Release/seqtune.node" node -e "const d = require('./dist/lib/device').devices(); if (!d.cuda.compiled) { console.error('build-gpu/Release/seqtune.node has no CUDA: ' + d.cuda.unusableReason); process.exit(1); } console.log('addon: CUDA ' + d.cuda.architectures.join(','))"
    # The GPU-only tap tests into dist/test (emitted even if tsc reports type errors: tap runs them untyped).
    npx tsc -p scripts/tsconfig.gpu-tests.json || echo "type errors above; the GPU tests were emitted anyway"
    cp test/kernels/hopper-child.js dist/test/kernels/  # the Hopper test's child, plain JS (tsc skips it)
    rm -rf .gpu/prod && mkdir -p .gpu/prod
    cp package.json package-lock.json .gpu/prod/
    (cd .gpu/prod && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
    mkdir -p .gpu/prod/node_modules/tap && cp scripts/gpu-tap.js .gpu/prod/node_modules/tap/index.js
    mkdir -p "$(git rev-parse --git-path info)"  # pack appends to .git/info/exclude, which a fresh clone may lack
    ../shared/gpu/pack
    stage_data
    strip --strip-unneeded -o .gpu/seqtune.node build-gpu/Release/seqtune.node
    xz -T0 -6 -f .gpu/seqtune.node
    echo "carry: .gpu ($(du -sh .gpu | cut -f1)), dist ($(du -sh dist | cut -f1)); the tree: $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1)"
    ;;
  tests)
    on_device_env
    status=0
    for t in dist/test/ops/cuda-wiring.test.js dist/test/runtime/device.test.js dist/test/kernels/hopper-gpu.test.js; do
      node "$t" | tee -a "$out/tests.tap" || status=1
    done
    exit $status
    ;;
  parity)
    on_device_env
    node dist/bench/gpu-parity.js
    ;;
  sanitize)
    on_device_env
    compute-sanitizer --tool memcheck --error-exitcode 3 node dist/bench/gpu-parity.js 2>&1 | tail -40
    ;;
  kernels)
    on_device_env
    node dist/bench/kernels.js
    ;;
  attention)
    on_device_env
    node dist/bench/attention.js
    ;;
  hf-parity)
    on_device_env
    work=/tmp/seqtune-hf-parity
    rm -rf "$work" && mkdir -p "$work"
    python3 bench/peer/hf_parity.py make "$work"
    status=0
    node dist/bench/hf-parity.js "$work" || status=$?  # writes $OUT/hf-parity.json
    python3 bench/peer/hf_parity.py check "$work" | tee "$out/hf-parity-peft.json"
    exit $status
    ;;
  train)
    on_device_env
    node dist/bench/train.js ${2:+--rows "$2"} ${3:+--layers "$3"}
    ;;
  train-parity)
    on_device_env
    node dist/bench/train-parity.js
    ;;
  generate)
    on_device_env
    node dist/bench/generate.js ${2:+--presets "$2"}
    ;;
  user)
    [ "${SEQTUNE_USER_DEVICE:-cuda:0}" = cpu ] || on_device_env
    exec scripts/gpu-user.sh
    ;;
  all)
    exec scripts/gpu-all.sh
    ;;
  stage-data)
    stage_data
    ;;
  bench)  # bench NAME ARGS...: node dist/bench/NAME.js ARGS (the `all` jobs' own settings)
    on_device_env
    node "dist/bench/$2.js" "${@:3}"
    ;;
  *)
    sed -n '2,34p' "$0"
    exit 2
    ;;
esac
