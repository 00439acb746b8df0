#!/usr/bin/env bash
# seqtune's Hub cache against huggingface_hub itself, both ways, with no network: the loopback Hub
# stand-in of the tests (test/helpers/hub-server.ts) serves a tiny random model, and
#   1. Python's hf_hub_download (HF_ENDPOINT pointing at it) fills a cache; seqtune loads the model
#      from that cache with HF_HUB_OFFLINE=1;
#   2. seqtune downloads into a fresh cache: its blobs have the names Python gave them in 1, and
#      snapshot_download(local_files_only=True) finds every file with the served bytes, and
#      scan_cache_dir() reads the cache without a warning.
# Needs the compiled TypeScript (npm run build:ts: dist/, with the stand-in) and a python with
# huggingface_hub (PYTHON=/path/to/python to choose one). Prints "hf-cache-check passed" at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
cli="node $root/dist/lib/cli.js"
id=tiny-org/tiny-llama
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
unset HF_TOKEN HF_HUB_OFFLINE HF_HOME

"$PY" -c 'import huggingface_hub; print("huggingface_hub", huggingface_hub.__version__)'
$cli init-model --preset tiny --tokenizer char --out "$work/model" --seed "$RANDOM" --quiet
node dist/test/helpers/hub-server.js "$work/model" "$id" >"$work/server.txt" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.txt" ] && break; sleep 0.1; done
read -r endpoint _ commit <"$work/server.txt"
echo "stand-in Hub at $endpoint, $id at $commit"

echo "== 1. huggingface_hub downloads, seqtune loads offline"
HF_ENDPOINT=$endpoint HF_HUB_CACHE=$work/py-cache "$PY" - "$id" <<'PYEOF'
import sys
from huggingface_hub import hf_hub_download
for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]:
    print(hf_hub_download(sys.argv[1], name))
PYEOF
HF_HUB_CACHE=$work/py-cache HF_HUB_OFFLINE=1 $cli generate --model "$id" --prompt hello --max-new-tokens 4 --device cpu

echo "== 2. seqtune downloads, huggingface_hub finds it offline"
HF_ENDPOINT=$endpoint HF_HUB_CACHE=$work/st-cache $cli download "$id"
HF_HUB_CACHE=$work/st-cache HF_HUB_OFFLINE=1 "$PY" - "$id" "$commit" "$work/model" "$work" <<'PYEOF'
import hashlib, os, sys
from huggingface_hub import scan_cache_dir, snapshot_download
repo_id, commit, source, work = sys.argv[1:]
blobs = lambda cache: sorted(os.listdir(os.path.join(work, cache, "models--" + repo_id.replace("/", "--"), "blobs")))
assert blobs("st-cache") == blobs("py-cache"), (blobs("st-cache"), blobs("py-cache"))
print("the same blob names (ETags) in both caches:", blobs("st-cache"))
path = snapshot_download(repo_id, local_files_only=True)
assert os.path.basename(path) == commit, (path, commit)
names = sorted(os.listdir(path))
for name in names:
    digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert digest(os.path.join(path, name)) == digest(os.path.join(source, name)), name
print("snapshot_download(local_files_only=True):", path, names)
info = scan_cache_dir()
assert not info.warnings, info.warnings
(repo,) = info.repos
assert repo.repo_id == repo_id and {r.commit_hash for r in repo.revisions} == {commit}, repo
assert {"main"} == set(next(iter(repo.revisions)).refs), repo.revisions
print("scan_cache_dir:", repo.repo_id, repo.size_on_disk, "bytes,", len(repo.revisions), "revision, refs", sorted(next(iter(repo.revisions)).refs))
PYEOF
echo "hf-cache-check passed"
