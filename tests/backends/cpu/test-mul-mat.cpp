// Tests of the tiled CPU matmul driver (backends/cpu/mul-mat.cpp) against the reference loop
// in ops-ref.cpp: every weight type, shapes that leave partial tiles and chunks, 1-3 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "backends/cpu/cpu-backend.h"
#include "backends/cpu/packed-weights.h"
#include "backends/cpu/quant-kernels.h"
#include "formats/quants.h"
#include "core/tensor.h"

using namespace xent;

namespace {

struct Case {
  Tensor w, x, dst;
  std::vector<uint8_t> w_bytes;
  std::vector<float> x_vals, wf;  // wf: the weights dequantized, for the tolerance
};

void make_case(Case& c, DType t, int64_t n_in, int64_t n_out, int64_t n_tok, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> wsrc(static_cast<size_t>(n_in * n_out));
  for (float& v : wsrc) v = 0.05f * normal(rng);
  const size_t row = dtype_row_bytes(t, n_in);
  c.w_bytes.assign(row * n_out, 0);
  for (int64_t i = 0; i < n_out; ++i) quantize_row(t, wsrc.data() + i * n_in, c.w_bytes.data() + i * row, n_in);
  c.wf.resize(wsrc.size());
  for (int64_t i = 0; i < n_out; ++i) dequantize_row(t, c.w_bytes.data() + i * row, c.wf.data() + i * n_in, n_in);
  c.x_vals.resize(static_cast<size_t>(n_in * n_tok));
  for (float& v : c.x_vals) v = normal(rng);

  c.w.type = t;
  c.w.ne[0] = n_in;
  c.w.ne[1] = n_out;
  c.w.set_contiguous_strides();
  c.w.data = c.w_bytes.data();
  c.x.ne[0] = n_in;
  c.x.ne[1] = n_tok;
  c.x.set_contiguous_strides();
  c.x.data = c.x_vals.data();
  c.dst.op = Op::MulMat;
  c.dst.src[0] = &c.w;
  c.dst.src[1] = &c.x;
  c.dst.ne[0] = n_out;
  c.dst.ne[1] = n_tok;
  c.dst.set_contiguous_strides();
}

std::vector<float> run(cpu::CpuBackend& be, Case& c) {
  std::vector<float> out(static_cast<size_t>(c.dst.ne[0] * c.dst.ne[1]), NAN);
  c.dst.data = out.data();
  be.compute({&c.dst});
  c.dst.data = nullptr;
  return out;
}

}  // namespace

TEST_CASE("tiled mul_mat equals the reference loop", "[cpu][kernels]") {
  std::mt19937 rng(5);
  cpu::CpuBackend ref(1, /*use_reference=*/true);
  for (DType t : {DType::F32, DType::F16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const int64_t n_in = dtype_block_elems(t) == 256 ? 512 : 96;  // odd 32-block count for 96
    for (int64_t n_out : {int64_t{1}, int64_t{7}, int64_t{70}}) {
      for (int64_t n_tok : {int64_t{1}, int64_t{3}, int64_t{9}}) {
        Case c;
        make_case(c, t, n_in, n_out, n_tok, rng);
        const std::vector<float> want = run(ref, c);
        for (int n_threads : {1, 3}) {
          INFO(dtype_name(t) << " n_out " << n_out << " n_tok " << n_tok << " threads " << n_threads);
          cpu::CpuBackend best(n_threads);
          const std::vector<float> got = run(best, c);
          for (int64_t j = 0; j < n_tok; ++j) {
            for (int64_t i = 0; i < n_out; ++i) {
              // Both quantize the activations to the same bytes; only float sums differ.
              double mag = 0;
              for (int64_t e = 0; e < n_in; ++e)
                mag += std::fabs(double(c.wf[i * n_in + e]) * c.x_vals[j * n_in + e]);
              const float g = got[j * n_out + i], w = want[j * n_out + i];
              INFO("row " << i << " token " << j << " got " << g << " want " << w);
              REQUIRE(std::fabs(g - w) <= 1e-5 * mag + 1e-30);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("matmuls of the same activations run as one group with the results of each alone",
          "[cpu][kernels]") {
  std::mt19937 rng(11);
  // Q and K of one input in Q4_0 and Q5_0 (both repacked where the CPU has the kernels) and V
  // in Q8_0; and a K-quant group as Q4_K_M files mix them (Q4_K gate, Q6_K up).
  const std::vector<std::vector<DType>> groups = {{DType::Q4_0, DType::Q5_0, DType::Q8_0},
                                                 {DType::Q4_K, DType::Q6_K}};
  for (const auto& types : groups) {
    const int64_t n_in = 512;
    for (int64_t n_tok : {int64_t{1}, int64_t{6}}) {
      std::deque<Case> cases;
      auto packed = std::make_shared<cpu::PackedWeights>();
      std::vector<std::vector<uint8_t>> packed_bytes;
      for (size_t m = 0; m < types.size(); ++m) {
        Case& c = cases.emplace_back();
        make_case(c, types[m], n_in, 64 + 4 * static_cast<int64_t>(m), n_tok, rng);
        if (m > 0) c.dst.src[1] = &cases.front().x;  // one activation tensor for all
        const cpu::QuantKernels* k = cpu::kernels_best(types[m]);
        if (k->pack4) {
          std::vector<uint8_t>& pb = packed_bytes.emplace_back(c.w_bytes.size());
          const size_t row = c.w.nb[1];
          for (int64_t r = 0; r < c.w.ne[1]; r += 4) k->pack4(n_in, c.w_bytes.data() + r * row, row, pb.data() + r * row);
          packed->by_data[c.w.data] = pb.data();
        }
      }
      for (int n_threads : {1, 2, 3}) {
        INFO(dtype_name(types[0]) << " group, n_tok " << n_tok << ", threads " << n_threads);
        cpu::CpuBackend be(n_threads);
        be.set_packed_weights(packed);
        std::vector<std::vector<float>> alone;
        for (Case& c : cases) alone.push_back(run(be, c));
        std::vector<std::vector<float>> grouped(cases.size());
        std::vector<Tensor*> nodes;
        for (size_t m = 0; m < cases.size(); ++m) {
          grouped[m].assign(static_cast<size_t>(cases[m].dst.ne[0] * n_tok), NAN);
          cases[m].dst.data = grouped[m].data();
          nodes.push_back(&cases[m].dst);
        }
        be.compute(nodes);
        // One step, unless packed and unpacked members alternate (at the AVX2 tier Q8_0 has
        // no packed kernel): packed kernels read their own activation layout.
        size_t want_steps = 1;
        for (size_t m = 1; m < cases.size(); ++m)
          want_steps += (packed->find(cases[m].w.data) != nullptr) != (packed->find(cases[m - 1].w.data) != nullptr);
        CHECK(be.n_steps() == want_steps);
        for (size_t m = 0; m < cases.size(); ++m) CHECK(grouped[m] == alone[m]);  // bit for bit
      }
    }
  }
}
