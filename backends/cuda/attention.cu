// Op::Attention on the GPU. First the new keys and values are rounded to f16 (nearest
// even, as the CPU) into the caches; then one block per (token, head) walks the visible
// cache rows with an online softmax per warp, and the warps' partial results are merged.
// Visibility is the CPU reference's: rows [0, n_past) always, batch row n_past + u when
// u <= t (causal) or, with a token-tree mask, when mask[t][u] == 0.
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

constexpr int kAttnWarps = 8;
constexpr int kDimsPerLane = static_cast<int>(kMaxAttentionHeadDim / 32);

// grid.x: n_tok * n_kv_head rows; threads stride the head dimension.
__global__ void kv_store_kernel(DevTensor k, DevTensor v, DevTensor kc, DevTensor vc, int n_past) {
  const int64_t n_kv_head = k.ne[1];
  const int64_t t = blockIdx.x / n_kv_head, h = blockIdx.x % n_kv_head;
  const float* pk = reinterpret_cast<const float*>(row_ptr(k, h, t));
  const float* pv = reinterpret_cast<const float*>(row_ptr(v, h, t));
  __half* ck = reinterpret_cast<__half*>(row_ptr(kc, h, n_past + t));
  __half* cv = reinterpret_cast<__half*>(row_ptr(vc, h, n_past + t));
  for (int64_t i = threadIdx.x; i < k.ne[0]; i += blockDim.x) {
    ck[i] = __float2half_rn(pk[i]);
    cv[i] = __float2half_rn(pv[i]);
  }
}

// grid.x: n_tok * n_head (token-major); kAttnWarps warps per block. Warp w takes the keys
// j = w, w + kAttnWarps, ...; lane l holds dimensions l, l + 32, ... of q and of its
// running output. Each warp keeps its own max m, normaliser l and output acc.
__global__ void __launch_bounds__(32 * kAttnWarps)
attention_kernel(DevTensor q, DevTensor kc, DevTensor vc, DevTensor mask, DevTensor dst,
                 int n_past, float scale) {
  __shared__ float s_max[kAttnWarps];
  __shared__ float s_sum[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kMaxAttentionHeadDim];

  const int64_t hd = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], n_kv_head = kc.ne[1];
  const int64_t t = blockIdx.x / n_head, h = blockIdx.x % n_head;
  const int64_t kvh = h / (n_head / n_kv_head);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const bool masked = mask.data != nullptr;
  const float* mrow = masked ? reinterpret_cast<const float*>(row_ptr(mask, t)) : nullptr;
  const int64_t n_keys = masked ? n_past + n_tok : n_past + t + 1;

  const float* pq = reinterpret_cast<const float*>(row_ptr(q, h, t));
  float qv[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qv[i] = d < hd ? pq[d] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;

  for (int64_t j = warp; j < n_keys; j += kAttnWarps) {
    if (masked && j >= n_past && mrow[j - n_past] != 0.0f) continue;  // the same j for the whole warp
    const __half* krow = reinterpret_cast<const __half*>(row_ptr(kc, kvh, j));
    float part = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) part = fmaf(qv[i], __half2float(krow[d]), part);
    }
    const float s = warp_sum(part) * scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float p = expf(s - m_new);
    l = l * corr + p;
    const __half* vrow = reinterpret_cast<const __half*>(row_ptr(vc, kvh, j));
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) acc[i] = fmaf(p, __half2float(vrow[d]), acc[i] * corr);
    }
    m = m_new;
  }

  if (lane == 0) {
    s_max[warp] = m;
    s_sum[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < hd) s_acc[warp][d] = acc[i];
  }
  __syncthreads();

  // Merge: out = sum_w acc_w e^(m_w - M) / sum_w l_w e^(m_w - M). A warp that saw no key
  // has m_w = -inf and contributes 0.
  float big = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) big = fmaxf(big, s_max[w]);
  float total = 0.0f;
  for (int w = 0; w < kAttnWarps; ++w) total += s_sum[w] * expf(s_max[w] - big);
  const float inv = 1.0f / total;
  float* out = reinterpret_cast<float*>(row_ptr(dst, t)) + h * hd;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) o += s_acc[w][d] * expf(s_max[w] - big);
    out[d] = o * inv;
  }
}

}  // namespace

void launch_attention(const OpArgs& a, cudaStream_t s) {
  const DevTensor& q = a.src[0];
  const DevTensor& k = a.src[1];
  const int64_t hd = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2], n_kv_head = k.ne[1];
  const int n_past = a.i_params[0];
  if (hd > kMaxAttentionHeadDim)
    throw Error("cuda: attention head size " + std::to_string(hd) + " is larger than " +
                std::to_string(kMaxAttentionHeadDim));
  if (n_tok == 0) return;
  kv_store_kernel<<<static_cast<unsigned int>(n_tok * n_kv_head), row_threads(hd, 256), 0, s>>>(
      k, a.src[2], a.src[3], a.src[4], n_past);
  check_launch("attention (cache store)");
  attention_kernel<<<static_cast<unsigned int>(n_tok * n_head), 32 * kAttnWarps, 0, s>>>(
      q, a.src[3], a.src[4], a.src[5], a.dst, n_past, a.f_params[0]);
  check_launch("attention");
}

}  // namespace xent::cuda
