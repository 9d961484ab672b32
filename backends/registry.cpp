// Which backends this build has, and creating them by name.
#include <string>

#include "backends/backend.h"
#include "backends/cpu/cpu-backend.h"

namespace xent {

#ifdef XENT_HAVE_VULKAN
std::unique_ptr<Backend> create_vulkan_backend(int device, std::string* why);
std::vector<std::string> list_vulkan_devices();
#endif
#ifdef XENT_HAVE_CUDA
std::unique_ptr<Backend> create_cuda_backend(int device, std::string* why);
std::vector<std::string> list_cuda_devices();
#endif

namespace {
// "vulkan1" -> ("vulkan", 1); "cuda" -> ("cuda", 0).
std::pair<std::string, int> parse_name(const std::string& name) {
  size_t i = name.size();
  while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') --i;
  const int device = i < name.size() ? std::stoi(name.substr(i)) : 0;
  return {name.substr(0, i), device};
}
}  // namespace

std::unique_ptr<Backend> create_backend(const std::string& name, int n_threads, std::string* why) {
  const auto [kind, device] = parse_name(name);
  if (kind == "cpu") return std::make_unique<cpu::CpuBackend>(n_threads);
#ifdef XENT_HAVE_VULKAN
  if (kind == "vulkan") return create_vulkan_backend(device, why);
#endif
#ifdef XENT_HAVE_CUDA
  if (kind == "cuda") return create_cuda_backend(device, why);
#endif
  (void)device;
  if (why) {
    if (kind == "vulkan" || kind == "cuda")
      *why = kind + " support is not compiled into this build (configure with -DXENT_" +
             (kind == "vulkan" ? std::string("VULKAN") : std::string("CUDA")) + "=ON)";
    else
      *why = "unknown backend '" + name + "' (known: cpu, vulkan, cuda)";
  }
  return nullptr;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> names = {"cpu"};
#ifdef XENT_HAVE_VULKAN
  names.push_back("vulkan");
#endif
#ifdef XENT_HAVE_CUDA
  names.push_back("cuda");
#endif
  return names;
}

std::vector<std::string> list_devices() {
  std::vector<std::string> out;
  cpu::CpuBackend cpu(1);
  out.push_back("cpu: " + cpu.device_description());
#ifdef XENT_HAVE_VULKAN
  for (const std::string& d : list_vulkan_devices()) out.push_back(d);
#endif
#ifdef XENT_HAVE_CUDA
  for (const std::string& d : list_cuda_devices()) out.push_back(d);
#endif
  return out;
}

}  // namespace xent
