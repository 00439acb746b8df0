#!/usr/bin/env bash
# Packaging check: pack the package, install the tarball into an empty folder, then require it and
# run `seqtune info` there. With a prebuild in prebuilds/ (npm run prebuild) the install uses it;
# otherwise the install builds from source (SEQTUNE_CUDA=0 keeps that quick).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "$work/$tarball"
node -e "const s = require('seqtune'); const d = s.devices(); console.log('require ok:', d.version, 'cuda compiled:', d.cuda.compiled)"
npx --no-install seqtune info
echo "package check passed"
