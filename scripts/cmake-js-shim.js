#!/usr/bin/env node
// prebuildify only knows node-gyp: it runs `<node-gyp> rebuild --target=… --arch=… --release` and
// then collects build/Release/*.node. This stands in for node-gyp and builds with cmake-js instead
// (the addon is Node-API, so the target version does not matter).
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const argv = process.argv.slice(2);
const arch = argv.find((a) => a.startsWith('--arch='));
const args = [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--config', argv.includes('--debug') ? 'Debug' : 'Release'];
if (arch) args.push(`--arch=${arch.slice('--arch='.length)}`);
if (process.env.SEQTUNE_CUDA === '0') args.push('--CDSEQTUNE_CUDA=OFF');
const result = spawnSync(process.execPath, args, { cwd: path.resolve(__dirname, '..'), stdio: 'inherit' });
process.exit(result.status ?? 1);
