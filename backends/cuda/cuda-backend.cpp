// The CUDA backend: device memory (one cudaMalloc per buffer), one stream per backend, and
// the op launchers of cuda-ops.h. Every CUDA error becomes an xent::Error with the runtime's
// message; a machine without a driver or device gets a null backend and a reason instead.
#include <iterator>
#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda-ops.h"
#include "formats/error.h"

namespace xent {
namespace {

void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Error("cuda: " + what + ": " + cudaGetErrorString(e));
}

struct CudaBuffer final : Buffer {
  uint8_t* dev = nullptr;
  int device = 0;
  ~CudaBuffer() override {
    // Errors are ignored here: a destructor must not throw, and at process exit the
    // runtime may already be unloaded.
    if (dev && cudaSetDevice(device) == cudaSuccess) cudaFree(dev);
  }
};

bool is_f32(const Tensor* t) { return t == nullptr || t->type == DType::F32; }

// Rows must be dense (the kernels step by elements inside a row). Context's placement
// probe for attention is built before any graph exists and leaves its strides at 0.
bool rows_dense(const Tensor* t) {
  return t == nullptr || t->nb[0] == 0 || t->nb[0] == dtype_block_bytes(t->type);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device_), "reading the device properties");
    description_ = std::string(prop.name) + " (" + std::to_string(prop.totalGlobalMem >> 20) +
                   " MiB, compute " + std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
    check(cuda::probe_kernel_image(),
          "this build has no kernels for " + description_ + " (rebuild with CMAKE_CUDA_ARCHITECTURES including " +
              std::to_string(prop.major * 10 + prop.minor) + ")");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream");
  }
  ~CudaBackend() override {
    if (stream_ && cudaSetDevice(device_) == cudaSuccess) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  std::string name() const override { return "cuda" + std::to_string(device_); }
  std::string device_description() const override { return description_; }
  bool is_host() const override { return false; }
  bool supports_attention_mask() const override { return true; }
  size_t alignment() const override { return 256; }

  bool supports(const Tensor& node) const override {
    for (const Tensor* s : node.src)
      if (!rows_dense(s)) return false;
    if (node.op != Op::None && node.op != Op::View && node.type != DType::F32) return false;
    const Tensor* a = node.src[0];
    const Tensor* b = node.src[1];
    switch (node.op) {
      case Op::None:
      case Op::View:
        return true;
      case Op::GetRows:
        return cuda::type_has_kernels(static_cast<uint32_t>(a->type)) && a->ne[0] % 8 == 0 &&
               b->type == DType::I32;
      case Op::MulMat:
        // The kernels read weights in groups of 8 elements and activations as dense rows.
        return cuda::type_has_kernels(static_cast<uint32_t>(a->type)) && a->ne[0] % 8 == 0 &&
               is_f32(b) && b->ne[2] == 1 && b->ne[3] == 1;
      case Op::Add:
      case Op::Mul:
      case Op::SwiGlu:
        return is_f32(a) && is_f32(b);
      case Op::Scale:
      case Op::Silu:
      case Op::Gelu:
        return is_f32(a);
      case Op::Rope:  // frequency factors and YaRN run on the CPU
        return rope_is_plain(node) && is_f32(a) && b->type == DType::I32;
      case Op::RmsNorm:
      case Op::LayerNorm:
        return is_f32(a) && is_f32(b) && is_f32(node.src[2]);
      case Op::SoftCap:  // Gemma 2's soft-capping and windows run on the CPU
        return false;
      case Op::Attention:
        return attention_is_plain(node) && is_f32(a) && is_f32(b) && is_f32(node.src[2]) && node.src[3]->type == DType::F16 &&
               node.src[4]->type == DType::F16 && is_f32(node.src[5]) &&
               a->ne[0] <= cuda::kMaxAttentionHeadDim;
    }
    return false;
  }

  std::unique_ptr<Buffer> alloc_buffer(size_t bytes) override {
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    auto b = std::make_unique<CudaBuffer>();
    b->backend = this;
    b->size = bytes;
    b->device = device_;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes > 0 ? bytes : 1);
    if (e != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky: clear it so later calls work
      throw Error("cuda: out of device memory allocating " + std::to_string(bytes) + " bytes on " +
                  name() + ": " + cudaGetErrorString(e));
    }
    b->dev = static_cast<uint8_t*>(p);
    // Zeroed like the CPU's caches, so rows never written read as 0 rather than garbage.
    check(cudaMemsetAsync(p, 0, bytes, stream_), "clearing a new buffer");
    check(cudaStreamSynchronize(stream_), "clearing a new buffer");
    return b;
  }

  // Copies are ordered on the stream after the kernels already queued (the destination
  // may be arena bytes they still use) and complete before returning, since the host
  // side may be a temporary.
  void upload(Buffer& dst, size_t offset, const void* src, size_t n) override {
    if (n == 0) return;
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    check(cudaMemcpyAsync(device_ptr(dst) + offset, src, n, cudaMemcpyHostToDevice, stream_),
          "uploading " + std::to_string(n) + " bytes");
    check(cudaStreamSynchronize(stream_), "uploading " + std::to_string(n) + " bytes");
  }

  void download(const Buffer& src, size_t offset, void* dst, size_t n) override {
    if (n == 0) return;
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    check(cudaMemcpyAsync(dst, device_ptr(src) + offset, n, cudaMemcpyDeviceToHost, stream_),
          "downloading " + std::to_string(n) + " bytes");
    check(cudaStreamSynchronize(stream_), "downloading " + std::to_string(n) + " bytes");
  }

  void compute(const std::vector<Tensor*>& nodes) override {
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    for (const Tensor* node : nodes) {
      if (node->op == Op::None || node->op == Op::View) continue;
      cuda::OpArgs a;
      a.dst = dev_tensor(*node);
      for (size_t i = 0; i < std::size(a.src); ++i)  // the ops it runs use at most six
        if (node->src[i]) a.src[i] = dev_tensor(*node->src[i]);
      for (int i = 0; i < 4; ++i) {
        a.i_params[i] = node->i_params[i];
        a.f_params[i] = node->f_params[i];
      }
      switch (node->op) {
        case Op::GetRows: cuda::launch_get_rows(a, stream_); break;
        case Op::MulMat: cuda::launch_mul_mat(a, stream_); break;
        case Op::Add: cuda::launch_add(a, stream_); break;
        case Op::Mul: cuda::launch_mul(a, stream_); break;
        case Op::Scale: cuda::launch_scale(a, stream_); break;
        case Op::RmsNorm: cuda::launch_rms_norm(a, stream_); break;
        case Op::LayerNorm: cuda::launch_layer_norm(a, stream_); break;
        case Op::Rope: cuda::launch_rope(a, stream_); break;
        case Op::Attention: cuda::launch_attention(a, stream_); break;
        case Op::Silu: cuda::launch_silu(a, stream_); break;
        case Op::Gelu: cuda::launch_gelu(a, stream_); break;
        case Op::SwiGlu: cuda::launch_swiglu(a, stream_); break;
        case Op::SoftCap:  // never placed here (supports)
        case Op::None:
        case Op::View: break;
      }
    }
  }

  void synchronize() override {
    check(cudaSetDevice(device_), "selecting device " + std::to_string(device_));
    check(cudaStreamSynchronize(stream_), "running kernels on " + name());
  }

 private:
  uint8_t* device_ptr(const Buffer& b) const {
    if (b.backend != this) throw Error("cuda: buffer of backend " + b.backend->name() + " used on " + name());
    return static_cast<const CudaBuffer&>(b).dev;
  }

  cuda::DevTensor dev_tensor(const Tensor& t) const {
    if (!t.buffer) throw Error("cuda: operand " + std::string(t.name) + " " + describe(t) + " has no device storage");
    cuda::DevTensor d;
    d.data = device_ptr(*t.buffer) + t.offset;
    d.type = static_cast<uint32_t>(t.type);
    for (int i = 0; i < 4; ++i) {
      d.ne[i] = t.ne[i];
      d.nb[i] = t.nb[i];
    }
    return d;
  }

  int device_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
};

// Device count, or a reason why there is none.
int count_devices(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("no CUDA device (") + cudaGetErrorString(e) + ")";
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device (none found)";
  return n;
}

}  // namespace

std::unique_ptr<Backend> create_cuda_backend(int device, std::string* why) {
  const int n = count_devices(why);
  if (n == 0) return nullptr;
  if (device < 0 || device >= n) {
    if (why) *why = "no CUDA device " + std::to_string(device) + " (this machine has " + std::to_string(n) + ")";
    return nullptr;
  }
  try {
    return std::make_unique<CudaBackend>(device);
  } catch (const Error& e) {
    cudaGetLastError();
    if (why) *why = e.what();
    return nullptr;
  }
}

std::vector<std::string> list_cuda_devices() {
  std::vector<std::string> out;
  const int n = count_devices(nullptr);
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    out.push_back("cuda" + std::to_string(i) + ": " + prop.name + " (" +
                  std::to_string(prop.totalGlobalMem >> 20) + " MiB, compute " + std::to_string(prop.major) +
                  "." + std::to_string(prop.minor) + ")");
  }
  return out;
}

}  // namespace xent
