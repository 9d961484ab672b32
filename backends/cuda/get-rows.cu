// Op::GetRows on the GPU: gathers table rows by id and dequantizes them to f32, eight
// elements per thread, straight from the quantized blocks.
#include "backends/cuda/cuda-common.cuh"

namespace xent::cuda {
namespace {

// grid.x: output rows; each thread dequantizes groups of 8 elements of the row.
template <uint32_t T>
__global__ void get_rows_kernel(DevTensor table, DevTensor ids, DevTensor dst) {
  const int64_t i1 = blockIdx.x;
  const int32_t id = *reinterpret_cast<const int32_t*>(ids.data + i1 * ids.nb[0]);
  float* out = reinterpret_cast<float*>(row_ptr(dst, i1));
  const bool valid = id >= 0 && id < table.ne[1];
  for (int64_t g = threadIdx.x; g < dst.ne[0] / 8; g += blockDim.x) {
    float v[8] = {};
    // Ids are validated before evaluation; the check only keeps a bug from reading wild memory.
    if (valid) dequant8<T>(row_ptr(table, id), g, v);
    for (int i = 0; i < 8; ++i) out[8 * g + i] = v[i];
  }
}

}  // namespace

void launch_get_rows(const OpArgs& a, cudaStream_t s) {
  const DevTensor& table = a.src[0];
  const DevTensor& ids = a.src[1];
  if (a.dst.ne[1] == 0) return;
  const unsigned int grid = static_cast<unsigned int>(a.dst.ne[1]);
  const int threads = row_threads(a.dst.ne[0] / 8, 256);
  const bool known = dispatch_type(table.type, [&](auto tag) {
    constexpr uint32_t T = decltype(tag)::value;
    get_rows_kernel<T><<<grid, threads, 0, s>>>(table, ids, a.dst);
  });
  if (!known) throw Error("cuda: get_rows has no kernel for type id " + std::to_string(table.type));
  check_launch("get_rows");
}

}  // namespace xent::cuda
