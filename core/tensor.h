// Tensors and the operations of the compute graph. A Tensor is a node: either a leaf
// (a weight in the file mapping, an input, a KV cache) or the result of an Op on srcs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/dtype.h"

namespace xent {

class Backend;
struct Buffer;

enum class Op : uint8_t {
  None,       // leaf: weight, input or cache; has storage of its own
  View,       // aliases src[0]'s bytes at view_offset with its own ne/nb; computes nothing
  GetRows,    // src0 [n_embd, n_rows] any type, src1 ids [n] i32 -> [n_embd, n] f32
  MulMat,     // src0 weights [k, m] any type, src1 [k, n] f32 -> [m, n] f32
  Add,        // src0 [d, ...] + src1 broadcast over rows ([d, 1] or same shape) -> f32
  Mul,        // elementwise product, src1 broadcast like Add
  Scale,      // src0 * f_params[0]
  RmsNorm,    // x / rms(x) * src1 (weight, optional); eps = f_params[0]
  LayerNorm,  // (x - mean) / std * src1 + src2 (both optional); eps = f_params[0]
  Rope,       // src0 [head_dim, n_heads, n_tok], src1 positions [n_tok] i32, src2 optional
              // frequency factors [n_dims / 2] f32; see RopeParam
  Attention,  // see AttentionParams
  Silu,
  Gelu,       // tanh approximation, as GPT-2
  SwiGlu,     // silu(src0) * src1
  SoftCap,    // f_params[0] * tanh(src0 / f_params[0]) (Gemma 2's final logit soft-capping)
};
const char* op_name(Op op);

constexpr int kMaxSrc = 7;

// i_params layout of Op::Rope: [0] n_dims, [1] mode, [2] n_ctx_orig (YaRN).
enum RopeParam { kRopeNDims = 0, kRopeMode = 1, kRopeNCtxOrig = 2 };  // mode 0: adjacent pairs, 2: NeoX halves
constexpr int32_t kRopeModeNormal = 0;
constexpr int32_t kRopeModeNeox = 2;
// f_params of Op::Rope: [0] freq_base, [1] freq_scale, [2] ext_factor, [3] attn_factor,
// [4] beta_fast, [5] beta_slow. Pair i of a row at position p turns by
//   theta_extrap = p * freq_base^(-2i/n_dims) / factor[i]     (factor 1 without src2)
//   theta        = theta_extrap * freq_scale                   (linear scaling)
// and with ext_factor != 0 (YaRN) by a blend of the two, theta_extrap * r + theta * (1 - r),
// r = ext_factor * ramp(i) (1 below the beta_fast correction dimension, 0 above beta_slow's);
// cos and sin are multiplied by attn_factor, and with YaRN by 1 + 0.1 ln(1 / freq_scale).
enum RopeFParam { kRopeBase = 0, kRopeScale, kRopeExtFactor, kRopeAttnFactor, kRopeBetaFast, kRopeBetaSlow };
struct Tensor;
// True when a Rope node is the plain rotation (no factors, no YaRN, attn_factor 1) that
// every backend implements; the others run on the CPU.
bool rope_is_plain(const Tensor& node);

// Op::Attention: src0 q [hd, n_head, n_tok] f32, src1 k_new [hd, n_kv_head, n_tok] f32,
// src2 v_new (same), src3 k_cache and src4 v_cache (leaves [hd, n_kv_head, n_ctx], f16, or
// q8_0 when hd is a multiple of 32: only the CPU reads those),
// src5 optional mask [n_tok, n_tok] f32. The op first writes k_new/v_new into the
// caches at rows [n_past, n_past + n_tok), then for batch token t computes
// softmax(q k^T * scale) v over cache rows [0, n_past) plus the batch rows n_past + u
// that t may see: u <= t (causal) without a mask; with a mask, those u whose
// mask[t][u] is 0 (it holds 0 or -INFINITY: a token tree, e.g. several candidate
// continuations of one prefix evaluated together). Result [hd * n_head, n_tok] f32.
// With i_params[kAttnWindow] = W > 0 (sliding-window attention, Gemma 2), query n_past + t
// sees only cache rows j with n_past + t - j < W. With f_params[1] = c > 0 (soft-capping),
// each score s = scale * q.k becomes c * tanh(s / c) before the softmax.
// Several sequences in one step: src6, an i32 table [4, n_seq] (unused entries have
// n_tok 0), gives for each sequence {first batch token, n_tok, cache base row, n_past};
// its tokens are contiguous in the batch and its cache rows are [base, base + n_past +
// n_tok). Each sequence then attends as above within its own rows (n_past taken from the
// table, not i_params; no mask).
enum AttentionParam { kAttnNPast = 0, kAttnWindow = 1 };  // i_params; f_params[0] = scale, [1] softcap
// True when an Attention node has neither a window nor soft-capping (what the GPU backends run).
bool attention_is_plain(const Tensor& node);

struct Tensor {
  DType type = DType::F32;
  int64_t ne[4] = {1, 1, 1, 1};  // elements per dimension; ne[0] is the contiguous row
  size_t nb[4] = {0, 0, 0, 0};   // bytes between consecutive elements/rows of each dim

  Op op = Op::None;
  Tensor* src[kMaxSrc] = {};
  int32_t i_params[4] = {};
  float f_params[6] = {};
  size_t view_offset = 0;        // Op::View: byte offset into src[0]

  // Storage. `data` is a host address when the bytes are host-visible (mapping,
  // CPU arena); `buffer` + `offset` say where a backend keeps them (device memory).
  void* data = nullptr;
  Buffer* buffer = nullptr;
  size_t offset = 0;

  int layer = -1;                // which block built it (-1: input/output): for -ngl placement
  const char* name = "";         // points at a string that outlives the graph

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return dtype_row_bytes(type, ne[0]); }
  size_t n_bytes() const;  // span from the first to one past the last byte
  bool is_contiguous() const;
  bool is_leaf() const { return op == Op::None; }
  // The tensor whose storage a view chain ends in.
  const Tensor* storage_root() const;
  Tensor* storage_root();
  // Sets nb[] for a dense layout of ne[].
  void set_contiguous_strides();
};

// A compact "[256, 8192] q4_k" description for messages.
std::string describe(const Tensor& t);

}  // namespace xent
