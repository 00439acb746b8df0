/** Float64 reference for the embedding lookup and its scatter-add gradient. */

export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, cols: number): Float64Array {
  const out = new Float64Array(ids.length * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) out[t * cols + c] = table[ids[t] * cols + c];
  }
  return out;
}

export function embeddingBackwardRef(dout: ArrayLike<number>, ids: ArrayLike<number>, vocab: number, cols: number): Float64Array {
  const dtable = new Float64Array(vocab * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) dtable[ids[t] * cols + c] += dout[t * cols + c];
  }
  return dtable;
}
