// Backend-ops test for Vulkan: every op x type x a few shapes runs through the scheduler
// on {vulkan, cpu} and on the CPU reference kernels alone, compared by normalised mean
// squared error with the per-type tolerance stated below. Skips when no Vulkan device exists.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu-backend.h"
#include "formats/quants.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/scheduler.h"

namespace xent {
std::unique_ptr<Backend> create_vulkan_backend(int device, std::string* why);
}

using namespace xent;

namespace {

// One backend for the whole test binary: creating a device per case would recompile
// pipelines each time (slow on lavapipe).
Backend* g_override = nullptr;  // a differently configured device for one test case
Backend* vulkan() {
  static std::string why;
  static std::unique_ptr<Backend> b = create_vulkan_backend(0, &why);
  if (!b) std::printf("no Vulkan device: %s\n", why.c_str());
  return g_override ? g_override : b.get();
}

// Catch2 v2 has no SKIP(): say why in the output and end the test case.
#define REQUIRE_VULKAN()                                  \
  Backend* vk = vulkan();                                 \
  if (!vk) {                                              \
    WARN("SKIPPED: no Vulkan device available");          \
    return;                                               \
  }

// Tolerances (NMSE). The CPU reference quantizes activations to Q8_0/Q8_1/Q8_K for
// quantized weights while the shaders use f32 activations, so quantized MulMat differs by
// the activation rounding (~3e-5 expected); everything else is f32 arithmetic in a
// different order (and GPU exp/sin/cos), so it agrees to ~1e-12.
constexpr double kTolExact = 1e-9;
constexpr double kTolQuantMatMul = 3e-4;

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Host bytes that leaves point at; they outlive both runs of a case.
struct Store {
  std::deque<std::vector<uint8_t>> blobs;
  const void* keep(const void* p, size_t n) {
    blobs.emplace_back(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    return blobs.back().data();
  }
};

Tensor* leaf(Graph& g, DType type, int64_t ne0, int64_t ne1, int64_t ne2, const void* data) {
  Tensor* t = g.input(type, ne0, ne1 * ne2, "leaf");
  t->ne[1] = ne1;
  t->ne[2] = ne2;
  t->set_contiguous_strides();
  t->data = const_cast<void*>(data);
  return t;
}

// What a case builder gets: whether this run is the Vulkan one, and a way to make a KV
// cache leaf that lives on the run's backend (it must: Attention runs where its cache is).
struct RunCtx {
  bool on_vulkan = false;
  Backend* vk = nullptr;
  std::deque<Tensor>* caches = nullptr;
  std::vector<std::unique_ptr<Buffer>>* buffers = nullptr;
  std::deque<std::vector<uint16_t>>* host_caches = nullptr;

  Tensor* cache(int64_t hd, int64_t n_kv, int64_t n_ctx, const std::vector<uint16_t>& init) {
    Tensor& t = caches->emplace_back();
    t.type = DType::F16;
    t.ne[0] = hd;
    t.ne[1] = n_kv;
    t.ne[2] = n_ctx;
    t.set_contiguous_strides();
    t.name = "cache";
    if (on_vulkan) {
      buffers->push_back(vk->alloc_buffer(t.n_bytes()));
      vk->upload(*buffers->back(), 0, init.data(), t.n_bytes());
      t.buffer = buffers->back().get();
    } else {
      host_caches->push_back(init);
      t.data = host_caches->back().data();
    }
    return &t;
  }
  std::vector<uint16_t> read_cache(const Tensor& t) const {
    std::vector<uint16_t> out(t.n_bytes() / 2);
    if (on_vulkan)
      vk->download(*t.buffer, t.offset, out.data(), t.n_bytes());
    else
      std::memcpy(out.data(), t.data, t.n_bytes());
    return out;
  }
};

struct RunResult {
  std::vector<float> out;
  std::vector<std::vector<uint16_t>> caches;  // final contents of the caches made
  size_t n_nodes = 0, n_on_vulkan = 0;
};

using Builder = std::function<Tensor*(Graph&, RunCtx&)>;

// Which layers may run on Vulkan (-ngl style); the CPU takes the rest.
using LayerPolicy = std::function<bool(size_t backend, int layer)>;
const LayerPolicy kAllLayers = [](size_t, int) { return true; };

RunResult run(const Builder& build, bool on_vulkan, const LayerPolicy& allowed = kAllLayers) {
  cpu::CpuBackend cpu(1, /*use_reference=*/true);
  std::deque<Tensor> caches;
  std::vector<std::unique_ptr<Buffer>> buffers;
  std::deque<std::vector<uint16_t>> host_caches;
  RunCtx ctx{on_vulkan, vulkan(), &caches, &buffers, &host_caches};
  RunResult r;
  {
    Graph g;
    Tensor* out = build(g, ctx);
    g.set_output(out);
    std::vector<Backend*> order;
    if (on_vulkan) order.push_back(vulkan());
    order.push_back(&cpu);
    Scheduler sched(order, allowed);
    sched.run(g);
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      if (g.nodes()[i]->op == Op::View) continue;
      ++r.n_nodes;
      if (on_vulkan && sched.placement()[i] == 0) ++r.n_on_vulkan;
    }
    const int64_t rows = out->n_rows();
    r.out.resize(static_cast<size_t>(out->n_elements()));
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(&r.out[static_cast<size_t>(i * out->ne[0])], static_cast<const uint8_t*>(out->data) + i * out->nb[1],
                  static_cast<size_t>(out->ne[0]) * sizeof(float));
    for (const Tensor& c : caches) r.caches.push_back(ctx.read_cache(c));
  }
  return r;
}

// Runs both, checks that every node ran on Vulkan (or, with a layer policy, that
// n_on_vulkan did), and returns the NMSE.
double compare(const std::string& what, const Builder& build, double tol, bool caches_exact = false,
               const LayerPolicy& allowed = kAllLayers, size_t n_on_vulkan = SIZE_MAX) {
  const RunResult want = run(build, false);
  const RunResult got = run(build, true, allowed);
  INFO(what);
  CHECK(got.n_on_vulkan == (n_on_vulkan == SIZE_MAX ? got.n_nodes : n_on_vulkan));
  const double e = nmse(got.out, want.out);
  std::printf("  %-58s nmse %.3g (tol %.0e)\n", what.c_str(), e, tol);
  CHECK(e <= tol);
  if (caches_exact) {
    REQUIRE(got.caches.size() == want.caches.size());
    for (size_t i = 0; i < got.caches.size(); ++i) CHECK(got.caches[i] == want.caches[i]);
  }
  return e;
}

const DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                              DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K};

bool is_plain(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

std::vector<uint8_t> quantized(DType t, const std::vector<float>& v, int64_t n_per_row) {
  std::vector<uint8_t> q(dtype_row_bytes(t, n_per_row) * (v.size() / static_cast<size_t>(n_per_row)));
  quantize_rows(t, v.data(), q.data(), static_cast<int64_t>(v.size()) / n_per_row, n_per_row);
  return q;
}

}  // namespace

TEST_CASE("vulkan get_rows: every weight type", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(11);
  for (DType t : kWeightTypes) {
    const int64_t blk = dtype_block_elems(t);
    for (int64_t ne0 : {blk == 256 ? int64_t{256} : int64_t{96}, blk == 256 ? int64_t{768} : (is_plain(t) ? int64_t{37} : int64_t{320})}) {
      const int64_t n_rows = 50;
      Store s;
      const std::vector<uint8_t> table = quantized(t, randn(static_cast<size_t>(ne0 * n_rows), rng), ne0);
      const void* tp = s.keep(table.data(), table.size());
      const std::vector<int32_t> ids = {3, 49, 0, 3, 17, 22, 48, 1, 30};
      const void* ip = s.keep(ids.data(), ids.size() * 4);
      compare(std::string("get_rows ") + dtype_name(t) + " ne0 " + std::to_string(ne0),
              [&](Graph& g, RunCtx&) {
                return g.get_rows(leaf(g, t, ne0, n_rows, 1, tp), leaf(g, DType::I32, 9, 1, 1, ip));
              },
              1e-12);
    }
  }
}

TEST_CASE("vulkan mul_mat: every weight type, mat-vec and mat-mat", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(12);
  struct Shape {
    int64_t k_blocks, m, n;
  };
  // m not a multiple of the 64-row tile; n = 1 (decode), 8 (mat-vec limit), 9 and 33
  // (mat-mat, partial 32-token tiles).
  const Shape shapes[] = {{3, 70, 1}, {3, 70, 8}, {2, 130, 9}, {4, 67, 33}};
  for (DType t : kWeightTypes) {
    const int64_t blk = is_plain(t) ? 32 : dtype_block_elems(t);
    for (const Shape& sh : shapes) {
      // Plain types also get a K that is not a multiple of 4.
      const int64_t K = is_plain(t) && sh.n == 9 ? 67 : sh.k_blocks * blk;
      Store s;
      const std::vector<uint8_t> w = quantized(t, randn(static_cast<size_t>(K * sh.m), rng), K);
      const void* wp = s.keep(w.data(), w.size());
      const std::vector<float> x = randn(static_cast<size_t>(K * sh.n), rng);
      const void* xp = s.keep(x.data(), x.size() * 4);
      compare(std::string("mul_mat ") + dtype_name(t) + " K " + std::to_string(K) + " M " + std::to_string(sh.m) +
                  " N " + std::to_string(sh.n),
              [&](Graph& g, RunCtx&) {
                return g.mul_mat(leaf(g, t, K, sh.m, 1, wp), leaf(g, DType::F32, K, sh.n, 1, xp));
              },
              is_plain(t) ? kTolExact : kTolQuantMatMul);
    }
  }
}

TEST_CASE("vulkan elementwise ops", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(13);
  for (const std::pair<int64_t, int64_t>& shape : {std::pair<int64_t, int64_t>{37, 5}, {256, 3}, {1000, 2}}) {
    const int64_t ne0 = shape.first, ne1 = shape.second;
    Store s;
    const size_t n = static_cast<size_t>(ne0 * ne1);
    const void* a = s.keep(randn(n, rng, 3.0f).data(), n * 4);
    const void* b = s.keep(randn(n, rng).data(), n * 4);
    const void* bias = s.keep(randn(static_cast<size_t>(ne0), rng).data(), static_cast<size_t>(ne0) * 4);
    const std::string sz = " [" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]";
    auto A = [&](Graph& g) { return leaf(g, DType::F32, ne0, ne1, 1, a); };
    auto B = [&](Graph& g) { return leaf(g, DType::F32, ne0, ne1, 1, b); };
    compare("add" + sz, [&](Graph& g, RunCtx&) { return g.add(A(g), B(g)); }, kTolExact);
    compare("add broadcast row" + sz, [&](Graph& g, RunCtx&) { return g.add(A(g), leaf(g, DType::F32, ne0, 1, 1, bias)); },
            kTolExact);
    compare("mul" + sz, [&](Graph& g, RunCtx&) { return g.mul(A(g), B(g)); }, kTolExact);
    compare("mul broadcast row" + sz, [&](Graph& g, RunCtx&) { return g.mul(A(g), leaf(g, DType::F32, ne0, 1, 1, bias)); },
            kTolExact);
    compare("scale" + sz, [&](Graph& g, RunCtx&) { return g.scale(A(g), -0.37f); }, kTolExact);
    compare("silu" + sz, [&](Graph& g, RunCtx&) { return g.silu(A(g)); }, kTolExact);
    compare("gelu" + sz, [&](Graph& g, RunCtx&) { return g.gelu(A(g)); }, kTolExact);
    compare("swiglu" + sz, [&](Graph& g, RunCtx&) { return g.swiglu(A(g), B(g)); }, kTolExact);
    // Inputs first needed by different nodes of one split: their uploads happen together,
    // so the memory plan must not give them the same bytes (a scheduler bug this found).
    compare("add(mul(a, b), b') with b' a second leaf" + sz,
            [&](Graph& g, RunCtx&) { return g.add(g.mul(A(g), B(g)), B(g)); }, kTolExact);
    // A chain, so intermediate results stay on the device and share its arena.
    compare("chain gelu(a*b + bias) * 2" + sz,
            [&](Graph& g, RunCtx&) {
              return g.scale(g.gelu(g.add(g.mul(A(g), B(g)), leaf(g, DType::F32, ne0, 1, 1, bias))), 2.0f);
            },
            kTolExact);
  }
  // Large values: GELU's tanh must not overflow to NaN.
  Store s;
  std::vector<float> big = {-200.0f, -50.0f, -10.0f, 0.0f, 10.0f, 50.0f, 200.0f, 1e4f};
  const void* bp = s.keep(big.data(), big.size() * 4);
  compare("gelu/silu large inputs",
          [&](Graph& g, RunCtx&) {
            Tensor* x = leaf(g, DType::F32, 8, 1, 1, bp);
            return g.add(g.gelu(x), g.silu(x));
          },
          kTolExact);
}

TEST_CASE("vulkan norms", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(14);
  for (const std::pair<int64_t, int64_t>& shape : {std::pair<int64_t, int64_t>{256, 7}, {100, 3}, {4097, 2}}) {
    const int64_t ne0 = shape.first, ne1 = shape.second;
    Store s;
    const size_t n = static_cast<size_t>(ne0 * ne1);
    std::vector<float> av = randn(n, rng, 2.0f);
    for (float& v : av) v += 0.5f;  // a mean for LayerNorm to remove
    const void* a = s.keep(av.data(), n * 4);
    const void* w = s.keep(randn(static_cast<size_t>(ne0), rng).data(), static_cast<size_t>(ne0) * 4);
    const void* bias = s.keep(randn(static_cast<size_t>(ne0), rng).data(), static_cast<size_t>(ne0) * 4);
    const std::string sz = " [" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]";
    auto A = [&](Graph& g) { return leaf(g, DType::F32, ne0, ne1, 1, a); };
    auto V = [&](Graph& g, const void* p) { return leaf(g, DType::F32, ne0, 1, 1, p); };
    compare("rms_norm" + sz, [&](Graph& g, RunCtx&) { return g.rms_norm(A(g), V(g, w), 1e-5f); }, kTolExact);
    compare("rms_norm no weight" + sz, [&](Graph& g, RunCtx&) { return g.rms_norm(A(g), nullptr, 1e-6f); }, kTolExact);
    compare("layer_norm" + sz, [&](Graph& g, RunCtx&) { return g.layer_norm(A(g), V(g, w), V(g, bias), 1e-5f); },
            kTolExact);
    compare("layer_norm no weight/bias" + sz, [&](Graph& g, RunCtx&) { return g.layer_norm(A(g), nullptr, nullptr, 1e-5f); },
            kTolExact);
    // The last row only, through a view with a byte offset (as models take the last token).
    compare("rms_norm of the last row (view)" + sz,
            [&](Graph& g, RunCtx&) { return g.rms_norm(g.rows(g.add(A(g), V(g, bias)), ne1 - 1, 1), V(g, w), 1e-5f); },
            kTolExact);
  }
}

TEST_CASE("vulkan rope", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(15);
  const int64_t hd = 64, n_head = 4, n_tok = 9;
  Store s;
  const size_t n = static_cast<size_t>(hd * n_head * n_tok);
  const void* x = s.keep(randn(n, rng).data(), n * 4);
  const std::vector<int32_t> pos = {0, 1, 2, 7, 100, 511, 1024, 4095, 20000};
  const void* pp = s.keep(pos.data(), pos.size() * 4);
  for (int32_t mode : {kRopeModeNormal, kRopeModeNeox}) {
    for (int32_t n_dims : {64, 32}) {
      for (float scale : {1.0f, 0.25f}) {
        for (float base : {10000.0f, 1000000.0f}) {
          char what[128];
          std::snprintf(what, sizeof what, "rope mode %d n_dims %d base %g freq_scale %g", mode, n_dims, base, scale);
          compare(what,
                  [&](Graph& g, RunCtx&) {
                    return g.rope(leaf(g, DType::F32, hd, n_head, n_tok, x), leaf(g, DType::I32, n_tok, 1, 1, pp),
                                  n_dims, mode, base, scale);
                  },
                  kTolExact);
        }
      }
    }
  }
}

TEST_CASE("vulkan: rope with frequency factors or YaRN runs on the CPU, never half-applied", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(17);
  const int64_t hd = 64, n_head = 2, n_tok = 5;
  Store s;
  const size_t n = static_cast<size_t>(hd * n_head * n_tok);
  const void* x = s.keep(randn(n, rng).data(), n * 4);
  const std::vector<int32_t> pos = {0, 3, 70, 300, 5000};
  const void* pp = s.keep(pos.data(), pos.size() * 4);
  std::vector<float> f(hd / 2);
  for (size_t i = 0; i < f.size(); ++i) f[i] = 1.0f + 0.5f * static_cast<float>(i);
  const void* fp = s.keep(f.data(), f.size() * 4);
  for (bool yarn : {false, true}) {
    compare(yarn ? "rope yarn" : "rope frequency factors",
            [&](Graph& g, RunCtx&) {
              Graph::RopeExtra e;
              if (yarn) {
                e.ext_factor = 1.0f;
                e.n_ctx_orig = 64;
              } else {
                e.freq_factors = leaf(g, DType::F32, hd / 2, 1, 1, fp);
              }
              return g.rope(leaf(g, DType::F32, hd, n_head, n_tok, x),
                            leaf(g, DType::I32, n_tok, 1, 1, pp), static_cast<int32_t>(hd), kRopeModeNeox, 10000.0f,
                            0.25f, e);
            },
            kTolExact, false, kAllLayers, /*n_on_vulkan=*/0);
  }
}

TEST_CASE("vulkan attention: GQA, KV cache, n_past, token-tree mask", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(16);
  const int64_t hd = 64, n_head = 8, n_kv = 2, n_ctx = 256;
  struct Case {
    int64_t n_tok;
    int32_t n_past;
    bool mask;
    bool qkv_view;  // q, k, v as strided views of one [3 * d, n_tok] tensor (GPT-2)
  };
  const Case cases[] = {{1, 0, false, false},   {1, 37, false, false},  {7, 0, false, false},
                        {70, 100, false, false}, {9, 64, false, true},   {1, 150, false, true},
                        {12, 30, true, false},   {70, 60, true, false},  {5, 0, true, true}};
  for (const Case& c : cases) {
    Store s;
    const size_t nq = static_cast<size_t>(hd * n_head * c.n_tok), nk = static_cast<size_t>(hd * n_kv * c.n_tok);
    const void* q = s.keep(randn(nq, rng).data(), nq * 4);
    const void* k = s.keep(randn(nk, rng).data(), nk * 4);
    const void* v = s.keep(randn(nk, rng).data(), nk * 4);
    const size_t nqkv = static_cast<size_t>(3 * hd * n_head * c.n_tok);
    const void* qkv = s.keep(randn(nqkv, rng).data(), nqkv * 4);
    // Cached prefix: random f16 rows below n_past, zeros above (as a fresh cache).
    std::vector<uint16_t> kc0(static_cast<size_t>(hd * n_kv * n_ctx), 0), vc0 = kc0;
    std::normal_distribution<float> d;
    for (size_t i = 0; i < static_cast<size_t>(hd * n_kv * c.n_past); ++i) {
      kc0[i] = f32_to_fp16(d(rng));
      vc0[i] = f32_to_fp16(d(rng));
    }
    // Token tree: t sees itself and each earlier u with probability 1/2.
    std::vector<float> mask(static_cast<size_t>(c.n_tok * c.n_tok), -INFINITY);
    std::bernoulli_distribution coin(0.5);
    for (int64_t t = 0; t < c.n_tok; ++t)
      for (int64_t u = 0; u <= t; ++u)
        if (u == t || coin(rng)) mask[static_cast<size_t>(t * c.n_tok + u)] = 0.0f;
    const void* mp = s.keep(mask.data(), mask.size() * 4);
    const int64_t nh_kv = c.qkv_view ? n_head : n_kv;  // the GPT-2 layout has no GQA

    char what[160];
    std::snprintf(what, sizeof what, "attention n_tok %lld n_past %d%s%s", static_cast<long long>(c.n_tok), c.n_past,
                  c.mask ? " mask" : "", c.qkv_view ? " qkv views" : " gqa 8/2");
    compare(what,
            [&](Graph& g, RunCtx& ctx) {
              Tensor *tq, *tk, *tv;
              if (c.qkv_view) {
                const int64_t dm = hd * n_head;
                Tensor* all = leaf(g, DType::F32, 3 * dm, c.n_tok, 1, qkv);
                const size_t f = sizeof(float);
                tq = g.view(all, hd, n_head, c.n_tok, hd * f, all->nb[1], 0);
                tk = g.view(all, hd, n_head, c.n_tok, hd * f, all->nb[1], dm * f);
                tv = g.view(all, hd, n_head, c.n_tok, hd * f, all->nb[1], 2 * dm * f);
              } else {
                tq = leaf(g, DType::F32, hd, n_head, c.n_tok, q);
                tk = leaf(g, DType::F32, hd, n_kv, c.n_tok, k);
                tv = leaf(g, DType::F32, hd, n_kv, c.n_tok, v);
              }
              std::vector<uint16_t> kinit = kc0, vinit = vc0;
              kinit.resize(static_cast<size_t>(hd * nh_kv * n_ctx), 0);
              vinit.resize(kinit.size(), 0);
              Tensor* kc = ctx.cache(hd, nh_kv, n_ctx, kinit);
              Tensor* vc = ctx.cache(hd, nh_kv, n_ctx, vinit);
              Tensor* m = c.mask ? leaf(g, DType::F32, c.n_tok, c.n_tok, 1, mp) : nullptr;
              return g.attention(tq, tk, tv, kc, vc, c.n_past, 1.0f / std::sqrt(static_cast<float>(hd)), m);
            },
            kTolExact, /*caches_exact=*/true);
  }
}

TEST_CASE("vulkan and cpu in one graph: copies both ways, liveness across splits", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  std::mt19937 rng(17);
  const int64_t ne0 = 300, ne1 = 6;
  Store s;
  const size_t n = static_cast<size_t>(ne0 * ne1);
  const void* x = s.keep(randn(n, rng).data(), n * 4);
  // Layer 1 runs on the CPU. S is made on Vulkan, used there once, then needed by the CPU
  // after later Vulkan nodes have had the chance to reuse its bytes (a scheduler bug this
  // found); the CPU result comes back for a last Vulkan node.
  const LayerPolicy layer1_on_cpu = [](size_t, int layer) { return layer != 1; };
  compare("vulkan -> cpu -> vulkan",
          [&](Graph& g, RunCtx&) {
            g.set_current_layer(0);
            // First-fit planning puts silu's result exactly where S was.
            Tensor* S = g.scale(leaf(g, DType::F32, ne0, ne1, 1, x), 0.5f);
            Tensor* t = g.silu(g.gelu(S));
            g.set_current_layer(1);
            Tensor* u = g.add(S, t);
            g.set_current_layer(2);
            return g.rms_norm(g.scale(u, 3.0f), nullptr, 1e-5f);
          },
          kTolExact, false, layer1_on_cpu, /*n_on_vulkan=*/5);
}

TEST_CASE("vulkan without subgroups, weights bound in pieces", "[vulkan][backend-ops]") {
  REQUIRE_VULKAN();
  // A second device object that takes the shared-memory reduction path and may bind only
  // 64 KiB per descriptor, so the weights below are bound and dispatched in pieces.
  setenv("XENT_VK_NO_SUBGROUPS", "1", 1);
  setenv("XENT_VK_MAX_BINDING", "65536", 1);
  std::string why;
  std::unique_ptr<Backend> small = create_vulkan_backend(0, &why);
  unsetenv("XENT_VK_NO_SUBGROUPS");
  unsetenv("XENT_VK_MAX_BINDING");
  REQUIRE(small);
  g_override = small.get();
  std::mt19937 rng(18);
  Store s;
  for (DType t : {DType::Q4_0, DType::Q6_K, DType::F16}) {
    const int64_t K = 512, M = 300;  // 300 rows of 288 to 1024 bytes: several 64 KiB pieces
    const std::vector<uint8_t> w = quantized(t, randn(static_cast<size_t>(K * M), rng), K);
    const void* wp = s.keep(w.data(), w.size());
    for (int64_t n : {int64_t{1}, int64_t{20}}) {
      const std::vector<float> x = randn(static_cast<size_t>(K * n), rng);
      const void* xp = s.keep(x.data(), x.size() * 4);
      compare(std::string("pieces: mul_mat ") + dtype_name(t) + " N " + std::to_string(n),
              [&](Graph& g, RunCtx&) { return g.mul_mat(leaf(g, t, K, M, 1, wp), leaf(g, DType::F32, K, n, 1, xp)); },
              is_plain(t) ? kTolExact : kTolQuantMatMul);
    }
    const std::vector<int32_t> ids = {299, 0, 150, 77, 298, 1};
    const void* ip = s.keep(ids.data(), ids.size() * 4);
    compare(std::string("pieces: get_rows ") + dtype_name(t),
            [&](Graph& g, RunCtx&) { return g.get_rows(leaf(g, t, K, M, 1, wp), leaf(g, DType::I32, 6, 1, 1, ip)); },
            1e-12);
  }
  const void* a = s.keep(randn(256 * 5, rng).data(), 256 * 5 * 4);
  compare("no subgroups: rms_norm", [&](Graph& g, RunCtx&) { return g.rms_norm(leaf(g, DType::F32, 256, 5, 1, a), nullptr, 1e-5f); },
          kTolExact);
  compare("no subgroups: layer_norm",
          [&](Graph& g, RunCtx&) { return g.layer_norm(leaf(g, DType::F32, 256, 5, 1, a), nullptr, nullptr, 1e-5f); },
          kTolExact);
  const int64_t hd = 32, nh = 4, nt = 5;
  const void* q = s.keep(randn(static_cast<size_t>(hd * nh * nt), rng).data(), static_cast<size_t>(hd * nh * nt) * 4);
  std::vector<uint16_t> zeros(static_cast<size_t>(hd * nh * 16), 0);
  compare("no subgroups: attention",
          [&](Graph& g, RunCtx& ctx) {
            Tensor* x = leaf(g, DType::F32, hd, nh, nt, q);
            return g.attention(x, x, x, ctx.cache(hd, nh, 16, zeros), ctx.cache(hd, nh, 16, zeros), 3, 0.2f);
          },
          kTolExact);
  g_override = nullptr;
}

TEST_CASE("vulkan backend basics: buffers round-trip, names, unsupported ops", "[vulkan]") {
  REQUIRE_VULKAN();
  CHECK(vk->name().rfind("vulkan", 0) == 0);
  CHECK_FALSE(vk->is_host());
  CHECK_FALSE(vk->device_description().empty());
  std::vector<uint8_t> src(1 << 20);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
  std::unique_ptr<Buffer> b = vk->alloc_buffer(src.size() + 100);
  CHECK(b->host == nullptr);
  vk->upload(*b, 100, src.data(), src.size());
  std::vector<uint8_t> back(src.size());
  vk->download(*b, 100, back.data(), back.size());
  CHECK(back == src);
  // A type without a shader falls back to the CPU: supports() must say no.
  Tensor w, x, mm;
  w.type = DType::Q8_K;
  w.ne[0] = 256;
  w.ne[1] = 4;
  w.set_contiguous_strides();
  x.ne[0] = 256;
  x.set_contiguous_strides();
  mm.op = Op::MulMat;
  mm.src[0] = &w;
  mm.src[1] = &x;
  mm.ne[0] = 4;
  mm.set_contiguous_strides();
  CHECK_FALSE(vk->supports(mm));
}
