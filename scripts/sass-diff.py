#!/usr/bin/env python3
"""Checks that a refactor left the kernels' machine code unchanged, without cuobjdump: compares two
folders of cubins kernel by kernel (each .text.<kernel> section's bytes and its relocations), with
the anonymous-namespace ids nvcc derives from a file's path normalised away.

Build one cubin per .cu and arch in each tree, without -lineinfo (it embeds file paths), e.g.
  nvcc -std=c++17 -O3 --expt-relaxed-constexpr -I. -I$CUDA/include/cccl -DSEQTUNE_CUDA=1 \
       '-DSEQTUNE_CUDA_ARCHS=""' -arch=sm_90a -cubin kernels/gemm/gemm.cu -o $DIR/gemm.cu.90a.cubin
then: scripts/sass-diff.py BEFORE_DIR AFTER_DIR [old=new,...] (renamed .cu base names)."""
import os
import re
import struct
import sys

def sections(path):
    d = open(path, 'rb').read()
    shoff, = struct.unpack_from('<Q', d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x3a)
    sh = [struct.unpack_from('<IIQQQQIIQQ', d, shoff + i * shentsize) for i in range(shnum)]
    def name(off, tab):
        s = sh[tab]; o = s[4] + off
        return d[o:d.index(b'\0', o)].decode()
    secs = {}
    for i, s in enumerate(sh):
        secs[i] = (name(s[0], shstrndx), s)
    # symbols
    syms = []
    for i, (n, s) in secs.items():
        if s[1] == 2:  # SYMTAB
            for k in range(s[5] // 24):
                st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from('<IBBHQQ', d, s[4] + k * 24)
                syms.append(name(st_name, s[6]))
    out = {}
    for i, (n, s) in secs.items():
        if n.startswith('.text.'):
            out[norm(n)] = ['code', d[s[4]:s[4] + s[5]]]
    for i, (n, s) in secs.items():
        if s[1] in (4, 9) and n.startswith('.rel') and '.text.' in n:  # RELA/REL
            ent = 24 if s[1] == 4 else 16
            rel = []
            for k in range(s[5] // ent):
                r_off, r_info = struct.unpack_from('<QQ', d, s[4] + k * ent)
                add = struct.unpack_from('<q', d, s[4] + k * ent + 16)[0] if ent == 24 else 0
                rel.append((r_off, r_info & 0xffffffff, norm(syms[r_info >> 32]), add))
            tgt = norm(n[n.index('.text.'):])
            out.setdefault(tgt, ['code', b''])
            out[tgt].append(repr(rel))
    return out

def norm(s):
    # An anonymous namespace mangles as <len>_GLOBAL__N__<id derived from the file path>: drop the id.
    out, i = '', 0
    for m in re.finditer(r'(\d+)(_GLOBAL__N__)', s):
        if m.start() < i: continue
        n = int(m.group(1)); out += s[i:m.start()] + 'ANON'; i = m.start(2) + n
    return out + s[i:]

def main(before, after, mapping):
    m = dict(x.split('=') for x in mapping.split(',')) if mapping else {}
    same = diff = 0; missing = []
    for f in sorted(os.listdir(before)):
        if not f.endswith('.cubin'): continue
        base, rest = f.split('.cu.')
        g = m.get(base, base) + '.cu.' + rest
        if not os.path.exists(os.path.join(after, g)):
            missing.append(f); continue
        a, b = sections(os.path.join(before, f)), sections(os.path.join(after, g))
        if set(a) != set(b):
            print('symbol sets differ', f, sorted(set(a) ^ set(b))[:4]); diff += 1; continue
        for k in a:
            if a[k] == b[k]: same += 1
            else: diff += 1; print('DIFF', f, k[:100])
    print(f'{same} kernel sections identical, {diff} differ, missing: {missing}')

main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else '')
