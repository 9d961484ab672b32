// The CUDA kernels against the CPU reference: the block dequantizer on the host (always),
// every op x type x shape through the scheduler on the device vs the scalar CPU backend
// (normalised mean squared error, tolerance per case), and the reference logits through
// CUDA. Device cases are skipped, with the reason, where no CUDA device exists.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu-backend.h"
#include "backends/cuda/dequant.cuh"
#include "common/reference.h"
#include "formats/quants.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/scheduler.h"

using namespace xent;

// Catch2 v2 has no SKIP(): say why in the output and end the test case.
#define XENT_SKIP_WITHOUT_DEVICE(backend, why)                      \
  do {                                                              \
    if (!(backend)) {                                               \
      WARN("SKIPPED: " << (why));                                   \
      return;                                                       \
    }                                                               \
  } while (0)

namespace {

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                              DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Normal values whose scale changes every 16 elements, so the sub-block scales and mins
// of the K-quants take many different values.
std::vector<float> random_values(size_t n, uint32_t seed, float spread = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::uniform_real_distribution<float> scale(0.05f, 2.0f);
  std::vector<float> v(n);
  float s = 1.0f;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) s = scale(rng) * spread;
    v[i] = d(rng) * s + (i % 64 == 0 ? 0.3f * s : 0.0f);
  }
  return v;
}

// Host bytes that outlive the graphs built over them.
struct Store {
  std::deque<std::vector<uint8_t>> blobs;
  const void* keep(std::vector<uint8_t> b) { return blobs.emplace_back(std::move(b)).data(); }
  const void* keep_floats(const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(float));
    std::memcpy(b.data(), v.data(), b.size());
    return keep(std::move(b));
  }
};

// A [ne0, ne1] host leaf of `type` holding `bytes`.
Tensor* leaf(Graph& g, DType type, int64_t ne0, int64_t ne1, const void* bytes) {
  Tensor* t = g.input(type, ne0, ne1, "leaf");
  t->data = const_cast<void*>(bytes);
  return t;
}

// Quantized weight bytes [k, m] of `type` from random values.
std::vector<uint8_t> weight_bytes(DType type, int64_t k, int64_t m, uint32_t seed) {
  const std::vector<float> v = random_values(static_cast<size_t>(k * m), seed);
  std::vector<uint8_t> out(dtype_row_bytes(type, k) * static_cast<size_t>(m));
  quantize_rows(type, v.data(), out.data(), m, k);
  return out;
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    err += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return norm > 0 ? err / norm : err;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

using Builder = std::function<Tensor*(Graph&)>;

struct Outcome {
  std::vector<float> values;  // the output, dense rows
  int backend_of_output = -1;  // index into the scheduler's backends of the node that made it
};

Outcome run(const std::vector<Backend*>& backends, const Builder& build) {
  Graph g;
  Tensor* out = build(g);
  g.set_output(out);
  Scheduler sched(backends, [](size_t, int) { return true; });
  sched.run(g);
  Outcome o;
  const auto& nodes = g.nodes();
  const auto it = std::find(nodes.begin(), nodes.end(), out);
  REQUIRE(it != nodes.end());
  o.backend_of_output = sched.placement()[static_cast<size_t>(it - nodes.begin())];
  for (int64_t r = 0; r < out->n_rows(); ++r) {
    const int64_t i1 = r % out->ne[1], i2 = (r / out->ne[1]) % out->ne[2], i3 = r / (out->ne[1] * out->ne[2]);
    const float* row = reinterpret_cast<const float*>(static_cast<const uint8_t*>(out->data) + i1 * out->nb[1] +
                                                      i2 * out->nb[2] + i3 * out->nb[3]);
    o.values.insert(o.values.end(), row, row + out->ne[0]);
  }
  return o;
}

// The device's result (scheduler over {cuda, cpu}) against the scalar CPU reference.
void compare(Backend& cuda, const std::string& what, double tol, const Builder& build) {
  cpu::CpuBackend reference(1, true);
  cpu::CpuBackend fallback(1, true);
  {
    Graph probe;
    if (!reference.supports(*build(probe))) {
      WARN(what << ": the CPU reference has no kernel for it; not compared");
      return;
    }
  }
  const Outcome want = run({&reference}, build);
  const Outcome got = run({&cuda, &fallback}, build);
  const double e = nmse(got.values, want.values);
  INFO(what << ": nmse " << e << " (tolerance " << tol << ")");
  CHECK(got.backend_of_output == 0);  // computed on the device, not by the fallback
  REQUIRE(got.values.size() == want.values.size());
  CHECK(all_finite(got.values));
  CHECK(e <= tol);
}

// Tolerance of a mat-mul by weight type: the CPU quantizes activations (8-bit blocks for
// the quantized types, possibly 16 bits for F16/BF16) while the device multiplies f32
// activations, so the difference is the CPU's activation rounding.
double mul_mat_tolerance(DType t) {
  switch (t) {
    case DType::F32: return 1e-6;
    case DType::F16: return 1e-5;
    case DType::BF16: return 1e-4;
    default: return 5e-4;
  }
}

std::unique_ptr<Backend> make_cuda(std::string* why) { return create_backend("cuda", 1, why); }

}  // namespace

TEST_CASE("cuda: the kernels' block dequantizer equals the reference, on the host", "[cuda]") {
  for (DType type : kWeightTypes) {
    INFO("type " << dtype_name(type));
    if (!dtype_can_quantize(type)) {
      WARN("no reference quantizer for " << dtype_name(type) << "; dequantizer not checked");
      continue;
    }
    REQUIRE(cuda::type_has_kernels(static_cast<uint32_t>(type)));
    const int64_t n = 1024;
    const std::vector<float> v = random_values(n, 11 + static_cast<uint32_t>(type), 3.0f);
    std::vector<uint8_t> q(dtype_row_bytes(type, n));
    quantize_row(type, v.data(), q.data(), n);
    std::vector<float> want(n), got(n);
    dequantize_row(type, q.data(), want.data(), n);
    REQUIRE(cuda::dequantize_row_host(static_cast<uint32_t>(type), q.data(), got.data(), n));
    float max_err = 0, max_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      max_err = std::max(max_err, std::fabs(got[i] - want[i]));
      max_abs = std::max(max_abs, std::fabs(want[i]));
    }
    // Same arithmetic up to the order of one multiply: at most a few ulps.
    INFO("max |difference| " << max_err << " of values up to " << max_abs);
    CHECK(max_err <= 4e-7f * max_abs);
    CHECK(max_abs > 0);
  }
  // Types without kernels are refused, so the scheduler sends them to the CPU.
  CHECK_FALSE(cuda::type_has_kernels(static_cast<uint32_t>(DType::Q8_K)));
  CHECK_FALSE(cuda::type_has_kernels(static_cast<uint32_t>(DType::I32)));
}

TEST_CASE("cuda ops: mul_mat, every weight type, mat-vec and tiled shapes", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  for (DType type : kWeightTypes) {
    if (!dtype_can_quantize(type)) continue;
    const int64_t block = dtype_block_elems(type);
    std::vector<int64_t> ks = block == 256 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{64, 160};
    if (block == 1) ks.push_back(40);  // not a multiple of the 32-wide tile
    for (int64_t k : ks) {
      for (int64_t m : {1, 37, 130}) {
        const void* w = store.keep(weight_bytes(type, k, m, static_cast<uint32_t>(k * 7 + m)));
        for (int64_t n : {1, 3, 8, 9, 65, 130}) {
          const void* x = store.keep_floats(random_values(static_cast<size_t>(k * n), static_cast<uint32_t>(n)));
          compare(*cuda,
                  std::string("mul_mat ") + dtype_name(type) + " k=" + std::to_string(k) + " m=" +
                      std::to_string(m) + " n=" + std::to_string(n),
                  mul_mat_tolerance(type), [&](Graph& g) {
                    return g.mul_mat(leaf(g, type, k, m, w), leaf(g, DType::F32, k, n, x));
                  });
        }
      }
    }
  }
}

TEST_CASE("cuda ops: get_rows, every table type", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  const std::vector<int32_t> ids = {0, 19, 5, 5, 11, 3, 18};
  const void* id_bytes = store.keep(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(ids.data()),
                                                         reinterpret_cast<const uint8_t*>(ids.data() + ids.size())));
  for (DType type : kWeightTypes) {
    if (!dtype_can_quantize(type)) continue;
    const int64_t k = dtype_block_elems(type) == 256 ? 512 : 96;
    const void* table = store.keep(weight_bytes(type, k, 20, 5));
    // Exact: both sides dequantize the same blocks (up to one rounding of a multiply).
    compare(*cuda, std::string("get_rows ") + dtype_name(type), 1e-12, [&](Graph& g) {
      return g.get_rows(leaf(g, type, k, 20, table), leaf(g, DType::I32, static_cast<int64_t>(ids.size()), 1, id_bytes));
    });
  }
}

TEST_CASE("cuda ops: elementwise, broadcast and strided operands", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  const int64_t d = 100, n = 12;
  const void* a = store.keep_floats(random_values(d * n, 1, 3.0f));
  const void* b = store.keep_floats(random_values(d * n, 2, 3.0f));
  const void* row = store.keep_floats(random_values(d, 3));
  const void* wide = store.keep_floats(random_values(2 * d * n, 4));
  constexpr double kTol = 1e-10;  // the same formulas in f32: a few ulps at most

  using Bin = Tensor* (Graph::*)(Tensor*, Tensor*);
  const std::pair<const char*, Bin> binaries[] = {{"add", &Graph::add}, {"mul", &Graph::mul}};
  for (const auto& [name, op] : binaries) {
    compare(*cuda, std::string(name) + " same shape", kTol, [&](Graph& g) {
      return (g.*op)(leaf(g, DType::F32, d, n, a), leaf(g, DType::F32, d, n, b));
    });
    compare(*cuda, std::string(name) + " row broadcast", kTol, [&](Graph& g) {
      return (g.*op)(leaf(g, DType::F32, d, n, a), leaf(g, DType::F32, d, 1, row));
    });
    compare(*cuda, std::string(name) + " 3-d broadcast over dim 2", kTol, [&](Graph& g) {
      Tensor* x = g.reshape(leaf(g, DType::F32, d, n, a), d, 4, 3);
      Tensor* y = g.reshape(leaf(g, DType::F32, d, 4, b), d, 4, 1);
      return (g.*op)(x, y);
    });
    compare(*cuda, std::string(name) + " strided view operand", kTol, [&](Graph& g) {
      // Every other row half of a wider tensor: rows of d floats, 2d apart, offset by 8 floats.
      Tensor* w = leaf(g, DType::F32, 2 * d, n, wide);
      Tensor* v = g.view(w, d - 8, n, 1, w->nb[1], w->nb[1] * n, 8 * sizeof(float));
      Tensor* x = g.view(leaf(g, DType::F32, d, n, a), d - 8, n, 1, d * sizeof(float), d * n * sizeof(float), 0);
      return (g.*op)(x, v);
    });
  }
  compare(*cuda, "swiglu", 1e-10, [&](Graph& g) {
    return g.swiglu(leaf(g, DType::F32, d, n, a), leaf(g, DType::F32, d, n, b));
  });
  compare(*cuda, "scale", kTol, [&](Graph& g) { return g.scale(leaf(g, DType::F32, d, n, a), 0.37f); });
  compare(*cuda, "silu", 1e-10, [&](Graph& g) { return g.silu(leaf(g, DType::F32, d, n, a)); });
  compare(*cuda, "gelu", 1e-10, [&](Graph& g) { return g.gelu(leaf(g, DType::F32, d, n, a)); });
}

TEST_CASE("cuda ops: rms_norm and layer_norm", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  for (int64_t d : {64, 100, 4096}) {
    const int64_t n = 5;
    const void* x = store.keep_floats(random_values(d * n, 7, 2.0f));
    const void* w = store.keep_floats(random_values(d, 8));
    const void* b = store.keep_floats(random_values(d, 9));
    const std::string sd = " d=" + std::to_string(d);
    // f32 block sums against the reference's f64 sums.
    constexpr double kTol = 1e-10;
    compare(*cuda, "rms_norm" + sd, kTol, [&](Graph& g) {
      return g.rms_norm(leaf(g, DType::F32, d, n, x), leaf(g, DType::F32, d, 1, w), 1e-5f);
    });
    compare(*cuda, "rms_norm without weight" + sd, kTol, [&](Graph& g) {
      return g.rms_norm(leaf(g, DType::F32, d, n, x), nullptr, 1e-6f);
    });
    compare(*cuda, "layer_norm" + sd, kTol, [&](Graph& g) {
      return g.layer_norm(leaf(g, DType::F32, d, n, x), leaf(g, DType::F32, d, 1, w), leaf(g, DType::F32, d, 1, b),
                          1e-5f);
    });
    compare(*cuda, "layer_norm without weight and bias" + sd, kTol, [&](Graph& g) {
      return g.layer_norm(leaf(g, DType::F32, d, n, x), nullptr, nullptr, 1e-5f);
    });
  }
}

TEST_CASE("cuda ops: rope, both modes, partial rotation, large positions", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  const std::vector<int32_t> pos = {0, 1, 7, 100, 1000, 4095};
  const int64_t n_tok = static_cast<int64_t>(pos.size());
  const void* pos_bytes = store.keep(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(pos.data()),
                                                          reinterpret_cast<const uint8_t*>(pos.data() + pos.size())));
  for (int64_t hd : {64, 80}) {
    const int64_t n_head = 4;
    const void* x = store.keep_floats(random_values(hd * n_head * n_tok, 21));
    for (int32_t mode : {kRopeModeNormal, kRopeModeNeox}) {
      for (int32_t n_dims : {static_cast<int32_t>(hd), 32}) {
        for (float freq_scale : {1.0f, 0.25f}) {
          // powf/sincosf of the device against the host's: ulps, amplified by angles of
          // up to ~4000 radians.
          compare(*cuda,
                  "rope hd=" + std::to_string(hd) + " mode=" + std::to_string(mode) + " n_dims=" +
                      std::to_string(n_dims) + " freq_scale=" + std::to_string(freq_scale),
                  1e-6, [&](Graph& g) {
                    Tensor* t = g.reshape(leaf(g, DType::F32, hd, n_head * n_tok, x), hd, n_head, n_tok);
                    return g.rope(t, leaf(g, DType::I32, n_tok, 1, pos_bytes), n_dims, mode, 10000.0f, freq_scale);
                  });
        }
      }
    }
  }
}

namespace {

// One attention step on `home` (the backend that holds the caches): caches pre-filled with
// the same f16 rows [0, n_past), then q/k/v of n_tok tokens. Returns the output and the
// caches afterwards.
struct AttentionShape {
  int64_t hd, n_head, n_kv_head, n_tok, n_ctx;
  int32_t n_past;
  bool masked;
};

struct AttentionOutcome {
  Outcome out;
  std::vector<uint8_t> k_cache, v_cache;
};

AttentionOutcome run_attention(const std::vector<Backend*>& backends, Backend& home, const AttentionShape& s,
                               Store& store, uint32_t seed) {
  const size_t cache_bytes = static_cast<size_t>(s.hd * s.n_kv_head * s.n_ctx) * 2;
  Tensor kc, vc;
  std::unique_ptr<Buffer> kbuf = home.alloc_buffer(cache_bytes), vbuf = home.alloc_buffer(cache_bytes);
  for (auto [t, buf, salt] : {std::tuple{&kc, kbuf.get(), 1u}, std::tuple{&vc, vbuf.get(), 2u}}) {
    t->type = DType::F16;
    t->ne[0] = s.hd;
    t->ne[1] = s.n_kv_head;
    t->ne[2] = s.n_ctx;
    t->set_contiguous_strides();
    t->buffer = buf;
    t->data = buf->host;
    const std::vector<float> past = random_values(cache_bytes / 2, seed * 10 + salt);
    std::vector<uint16_t> halves(past.size());
    for (size_t i = 0; i < past.size(); ++i) halves[i] = f32_to_fp16(past[i]);
    home.upload(*buf, 0, halves.data(), cache_bytes);
  }
  const int64_t q_n = s.hd * s.n_head * s.n_tok, kv_n = s.hd * s.n_kv_head * s.n_tok;
  const void* q = store.keep_floats(random_values(static_cast<size_t>(q_n), seed * 10 + 3));
  const void* k = store.keep_floats(random_values(static_cast<size_t>(kv_n), seed * 10 + 4));
  const void* v = store.keep_floats(random_values(static_cast<size_t>(kv_n), seed * 10 + 5));
  // A token tree: each token sees itself and a random subset of the earlier ones.
  std::vector<float> mask(static_cast<size_t>(s.n_tok * s.n_tok), -INFINITY);
  std::mt19937 rng(seed);
  for (int64_t t = 0; t < s.n_tok; ++t)
    for (int64_t u = 0; u <= t; ++u)
      if (u == t || rng() % 2) mask[static_cast<size_t>(t * s.n_tok + u)] = 0.0f;
  const void* mask_bytes = store.keep_floats(mask);

  AttentionOutcome r;
  r.out = run(backends, [&](Graph& g) {
    Tensor* tq = g.reshape(leaf(g, DType::F32, s.hd, s.n_head * s.n_tok, q), s.hd, s.n_head, s.n_tok);
    Tensor* tk = g.reshape(leaf(g, DType::F32, s.hd, s.n_kv_head * s.n_tok, k), s.hd, s.n_kv_head, s.n_tok);
    Tensor* tv = g.reshape(leaf(g, DType::F32, s.hd, s.n_kv_head * s.n_tok, v), s.hd, s.n_kv_head, s.n_tok);
    Tensor* tm = s.masked ? leaf(g, DType::F32, s.n_tok, s.n_tok, mask_bytes) : nullptr;
    return g.attention(tq, tk, tv, &kc, &vc, s.n_past, 1.0f / std::sqrt(static_cast<float>(s.hd)), tm);
  });
  r.k_cache.resize(cache_bytes);
  r.v_cache.resize(cache_bytes);
  home.download(*kbuf, 0, r.k_cache.data(), cache_bytes);
  home.download(*vbuf, 0, r.v_cache.data(), cache_bytes);
  return r;
}

}  // namespace

TEST_CASE("cuda ops: attention, decode and prefill, GQA, token-tree mask, f16 cache writes", "[cuda][ops]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  Store store;
  const AttentionShape shapes[] = {
      {64, 8, 8, 1, 64, 37, false},    // decode, multi-head
      {64, 8, 2, 1, 64, 0, false},     // first token, GQA
      {32, 8, 4, 20, 64, 0, false},    // prefill from empty
      {128, 4, 2, 7, 64, 13, false},   // prefill after a prefix
      {80, 4, 1, 5, 32, 9, false},     // head size not a multiple of 32, one kv head
      {256, 2, 2, 3, 16, 4, false},    // the largest head size
      {64, 8, 2, 9, 64, 11, true},     // token tree over a prefix
      {32, 4, 4, 6, 16, 0, true},      // token tree from empty
  };
  uint32_t seed = 1;
  for (const AttentionShape& s : shapes) {
    INFO("hd " << s.hd << " heads " << s.n_head << "/" << s.n_kv_head << " n_tok " << s.n_tok << " n_past "
               << s.n_past << (s.masked ? " masked" : ""));
    cpu::CpuBackend reference(1, true), fallback(1, true);
    const AttentionOutcome want = run_attention({&reference}, reference, s, store, seed);
    const AttentionOutcome got = run_attention({cuda.get(), &fallback}, *cuda, s, store, seed);
    ++seed;
    CHECK(got.out.backend_of_output == 0);
    REQUIRE(got.out.values.size() == want.out.values.size());
    CHECK(all_finite(got.out.values));
    const double e = nmse(got.out.values, want.out.values);
    INFO("nmse " << e);
    // f32 dot products in another order and an online softmax against the two-pass one.
    CHECK(e <= 1e-9);
    // The new rows are rounded to f16 the same way (nearest even), the old ones untouched.
    CHECK(got.k_cache == want.k_cache);
    CHECK(got.v_cache == want.v_cache);
  }
}

namespace {

const char* const kReferenceModels[] = {
    "tiny-llama-spm-f32",   "tiny-llama-spm-f16",   "tiny-llama-spm-q8_0",  "tiny-llama-spm-q4_0",
    "tiny-llama-spm-q5_0",  "tiny-llama-spm-q2_k",  "tiny-llama-spm-q4_k_m", "tiny-llama-spm-q5_k_m",
    "tiny-llama-spm-q6_k",  "tiny-llama-bpe-q4_k_m", "tiny-qwen2-q8_0",     "tiny-qwen2-q4_0",
    "tiny-gpt2-q8_0",       "tiny-gpt2-q4_k_m",     "clinical-gpt2-q8_0",
};

}  // namespace

TEST_CASE("cuda: reference logits of the test models through the device", "[cuda][model]") {
  std::string why;
  std::unique_ptr<Backend> cuda = make_cuda(&why);
  XENT_SKIP_WITHOUT_DEVICE(cuda, why);
  cuda.reset();
  for (const char* name : kReferenceModels) {
    const float tol = test::reference_tolerance(name);
    for (const char* prompt : {"p1-clinical", "p4-unicode"}) {
      for (int ubatch : {512, 1}) {  // the tiled kernels, then mat-vec and decode attention
        ContextParams cp;
        cp.n_threads = 2;
        cp.n_ubatch = ubatch;
        cp.backends = {"cuda"};
        const auto r = test::check_reference(test::shared_path(std::string("models/") + name + ".gguf"), name,
                                             prompt, cp, tol);
        std::printf("cuda %-24s %-12s ubatch %3d: max |diff| %.4f (tol %.2f), top-1 %d/%d, greedy %d\n", name,
                    prompt, ubatch, r.max_abs_diff, tol, r.top1_checked - r.top1_mismatch, r.top1_checked,
                    r.greedy_checked);
      }
    }
  }
}
