#include "backends/cpu/packed-weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cpu/quant-kernels.h"
#include "formats/error.h"

namespace xent::cpu {

void PackedWeights::Free::operator()(uint8_t* p) const { std::free(p); }

std::shared_ptr<const PackedWeights> pack_weights(const std::deque<Tensor>& weights) {
  auto out = std::make_shared<PackedWeights>();
  if (const char* e = std::getenv("XENT_NO_REPACK"); e && *e && std::strcmp(e, "0") != 0) return out;
  struct Job {
    const Tensor* w;
    const QuantKernels* k;
    size_t bytes, offset;
  };
  std::vector<Job> jobs;
  size_t total = 0;
  // Without output.weight the token embedding is the output layer too (tied): packed for
  // the matmul, while the lookup of a few rows per step keeps reading the mapped file.
  bool tied = true;
  for (const Tensor& w : weights)
    if (w.name && std::string_view(w.name) == "output.weight") tied = false;
  for (const Tensor& w : weights) {
    const std::string_view name = w.name ? w.name : "";
    if (name.substr(0, 4) != "blk." && name != "output.weight" && !(tied && name == "token_embd.weight")) continue;
    if (w.ne[2] != 1 || w.ne[3] != 1 || w.ne[1] % 4 != 0 || !w.data) continue;
    const QuantKernels* k = kernels_best(w.type);
    if (!k || !k->pack4 || !k->vec_dot_packed4) continue;
    if (w.nb[1] != w.row_bytes()) continue;
    const size_t bytes = w.row_bytes() * static_cast<size_t>(w.ne[1]);
    jobs.push_back({&w, k, bytes, total});
    total += (bytes + 63) / 64 * 64;
  }
  if (jobs.empty()) return out;

  // One block, 2 MiB aligned and advised for huge pages: far fewer page faults while it is
  // written (each costs microseconds in a VM) and fewer TLB misses while it is read.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t rounded = (total + kHuge - 1) / kHuge * kHuge;
  auto* base = static_cast<uint8_t*>(std::aligned_alloc(kHuge, rounded));
  if (!base) throw Error("cpu: out of memory repacking " + std::to_string(total) + " bytes of weights");
  out->storage.reset(base);
#ifdef MADV_HUGEPAGE
  ::madvise(base, rounded, MADV_HUGEPAGE);
#endif
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  for (const Job& j : jobs) {
    const Tensor& w = *j.w;
    const auto* src = static_cast<const uint8_t*>(w.data);
    uint8_t* dst = base + j.offset;
    const size_t group = 4 * w.nb[1];
    for (int64_t g = 0; g < w.ne[1] / 4; ++g)
      j.k->pack4(w.ne[0], src + static_cast<size_t>(g) * group, w.nb[1], dst + static_cast<size_t>(g) * group);
    out->by_data.emplace(w.data, dst);
    out->bytes += j.bytes;
    // Whole pages inside the tensor only: neighbours may still be in use.
    const uintptr_t first = (reinterpret_cast<uintptr_t>(src) + page - 1) / page * page;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(src) + j.bytes) / page * page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
  return out;
}

}  // namespace xent::cpu
