#!/usr/bin/env python3
"""Benchmark peer for bench/data-augment.ts: tokenizes the same texts with the original
SentencePiece library (Debian's python3-sentencepiece) and reports the encode time, the token
count and a CRC-32 of each text's ids (int32 little-endian), so the caller can check agreement.

usage: sentencepiece_tokenize.py MODEL TEXTS.jsonl OUT.json   (TEXTS: one JSON string a line)
"""
import json
import sys
import time
import zlib
from array import array

import sentencepiece as spm


def main() -> None:
    model, texts_path, out_path = sys.argv[1:4]
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(texts_path, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    start, cpu = time.perf_counter(), time.process_time()
    ids = [sp.encode(t) for t in texts]  # no BOS/EOS, like the pipeline's per-segment encode
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    crcs = [zlib.crc32(array("i", x).tobytes()) for x in ids]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"seconds": seconds, "cpu_seconds": cpu_seconds, "tokens": sum(len(x) for x in ids), "texts": len(texts), "crc32": crcs, "version": spm.__version__}, f)


if __name__ == "__main__":
    main()
