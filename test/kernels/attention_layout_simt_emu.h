// The SIMT attention kernels (kernels/attention/attention_simt.cuh) under the emulator, launched as
// kernels/attention/attention_simt.cu launches them: one CTA per kWarps rows of one head (kv head in the
// backward's key pass), register chunks chosen from D. Storage is f32, bf16 or f16; values go in
// and come out as float (the inputs hold values the dtype represents). Included at the end of
// attention_layout_emulator.cpp; attention_emulated.h declares these.

namespace emu {

namespace simtemu {

using namespace seqtune::gpu::attn::simt;

template <typename T>
T poisonOf() {
  if constexpr (std::is_same_v<T, float>) {
    return kNan32;
  } else {
    return T{kNan16};
  }
}

template <typename T>
Guarded<T> stored(const std::vector<float>& values) {
  Guarded<T> g(values.size(), poisonOf<T>());
  for (size_t i = 0; i < values.size(); ++i) g.data()[i] = seqtune::gpu::ptx::fromFloat<T>(values[i]);
  return g;
}

template <typename T>
std::vector<float> loaded(const Guarded<T>& g) {
  std::vector<float> out;
  for (const T& x : g.values()) out.push_back(seqtune::gpu::ptx::toFloat<T>(x));
  return out;
}

template <typename T>
Params<T> params(const AttentionShape& s, Guarded<T>& q, Guarded<T>& k, Guarded<T>& v, Guarded<int32_t>& cu) {
  Params<T> p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.cu = cu.data();
  p.tokens = s.tokens;
  p.maxTokens = s.maxTokens;
  p.batch = int(s.batch);
  p.heads = int(s.heads);
  p.kvHeads = int(s.kvHeads);
  p.headDim = int(s.headDim);
  p.scale = static_cast<float>(s.scale);
  p.causal = s.causal;
  return p;
}

dim3 rowGrid(const AttentionShape& s, int64_t heads) { return {unsigned((s.tokens + kWarps - 1) / kWarps), unsigned(heads), 1}; }

template <typename T, int kChunks>
std::string forward(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                    const std::vector<float>& v, const std::vector<int32_t>& cu, const std::vector<int32_t>& qOffset,
                    const std::vector<int32_t>& kvLens, std::vector<float>& out, std::vector<float>& lse, Options o) {
  Guarded<T> gq = stored<T>(q), gk = stored<T>(k), gv = stored<T>(v), gout(q.size(), poisonOf<T>());
  Guarded<int32_t> gcu(cu, -1), gqo(qOffset, -1), gkl(kvLens, -1);
  Guarded<float> glse(s.heads * s.tokens, kNan32);
  Params<T> p = params<T>(s, gq, gk, gv, gcu);
  if (s.maxTokens > 0) {
    p.qOffset = gqo.data();
    p.kvLens = gkl.data();
  }
  p.out = gout.data();
  p.lse = glse.data();
  std::string error = launch(rowGrid(s, s.heads), kCtaThreads, 0, o.reverse, o.lazyCopies,
                             [&](uint8_t*) { forwardRow<T, kChunks>(p); });
  if (!(gout.intact() && glse.intact())) error += " a write outside a tensor";
  out = loaded(gout);
  lse = glse.values();
  return error;
}

template <typename T, int kChunks>
std::string backward(const AttentionShape& s, const std::vector<float>& dout, const std::vector<float>& q,
                     const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& out,
                     const std::vector<float>& lse, const std::vector<int32_t>& cu, std::vector<float>& dq,
                     std::vector<float>& dk, std::vector<float>& dv, Options o) {
  Guarded<T> gq = stored<T>(q), gk = stored<T>(k), gv = stored<T>(v), gdout = stored<T>(dout), gout = stored<T>(out);
  Guarded<T> gdq(q.size(), poisonOf<T>()), gdk(k.size(), poisonOf<T>()), gdv(v.size(), poisonOf<T>());
  Guarded<int32_t> gcu(cu, -1);
  Guarded<float> glse(lse, kNan32), di(s.heads * s.tokens, kNan32);
  Params<T> p = params<T>(s, gq, gk, gv, gcu);
  p.dout = gdout.data();
  p.fwdOut = gout.data();
  p.fwdLse = glse.data();
  p.dq = gdq.data();
  p.dk = gdk.data();
  p.dv = gdv.data();
  p.di = di.data();
  std::string error = launch(rowGrid(s, s.heads), kCtaThreads, 0, o.reverse, o.lazyCopies,
                             [&](uint8_t*) { backwardQueryRow<T, kChunks>(p); });
  if (error.empty()) {
    error = launch(rowGrid(s, s.kvHeads), kCtaThreads, 0, o.reverse, o.lazyCopies,
                   [&](uint8_t*) { backwardKeyRow<T, kChunks>(p); });
  }
  if (!(gdq.intact() && gdk.intact() && gdv.intact() && di.intact())) error += " a write outside a tensor";
  dq = loaded(gdq);
  dk = loaded(gdk);
  dv = loaded(gdv);
  return error;
}

// f(T, chunks) as attention_simt.cu's dispatch: dtype 0 f32, 1 bf16, 2 f16; D <= 256.
template <typename F>
std::string dispatch(int dtype, int64_t D, F&& f) {
  auto chunks = [&](auto tag) {
    if (D <= 32) return f(tag, std::integral_constant<int, 1>{});
    if (D <= 64) return f(tag, std::integral_constant<int, 2>{});
    if (D <= 128) return f(tag, std::integral_constant<int, 4>{});
    return f(tag, std::integral_constant<int, 8>{});
  };
  if (dtype == 0) return chunks(float{});
  if (dtype == 1) return chunks(__nv_bfloat16{});
  return chunks(__half{});
}

}  // namespace simtemu

std::string simtForward(const AttentionShape& s, int dtype, const std::vector<float>& q, const std::vector<float>& k,
                        const std::vector<float>& v, const std::vector<int32_t>& cu, const std::vector<int32_t>& qOffset,
                        const std::vector<int32_t>& kvLens, std::vector<float>& out, std::vector<float>& lse, Options o) {
  return simtemu::dispatch(dtype, s.headDim, [&](auto tag, auto chunks) {
    return simtemu::forward<decltype(tag), decltype(chunks)::value>(s, q, k, v, cu, qOffset, kvLens, out, lse, o);
  });
}

std::string simtBackward(const AttentionShape& s, int dtype, const std::vector<float>& dout, const std::vector<float>& q,
                         const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& out,
                         const std::vector<float>& lse, const std::vector<int32_t>& cu, std::vector<float>& dq,
                         std::vector<float>& dk, std::vector<float>& dv, Options o) {
  return simtemu::dispatch(dtype, s.headDim, [&](auto tag, auto chunks) {
    return simtemu::backward<decltype(tag), decltype(chunks)::value>(s, dout, q, k, v, out, lse, cu, dq, dk, dv, o);
  });
}

}  // namespace emu
