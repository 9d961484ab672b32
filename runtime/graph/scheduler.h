// Runs a Graph on a list of backends: places each node on the first backend (in the
// user's order) that supports it and may hold its layer, plans each backend's scratch
// memory by liveness, and copies tensors across backend boundaries.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "runtime/graph/graph.h"

namespace xent {

class Scheduler {
 public:
  // backends: in preference order; a host (CPU) backend must be among them, it is the
  // fallback for every node. layer_allowed(backend_index, layer) decides -ngl placement.
  Scheduler(std::vector<Backend*> backends,
            std::function<bool(size_t backend_index, int layer)> layer_allowed);

  // Declares that `copy` (storage on a non-host backend) holds the same bytes as the
  // host tensor `original` (a weight uploaded once), so nodes on that backend use it
  // instead of copying `original` every step.
  void add_resident(const Tensor* original, Tensor* copy);

  // Places, plans, copies and computes. Afterwards graph.output() has host-visible data.
  // The plan (placement, copies, memory) is kept: running the same graph again (same
  // Graph::version(), e.g. the next decode step with new inputs and a new n_past) only
  // performs the copies and computes, without planning or allocating.
  void run(Graph& graph);

  // Statistics of the last run (for `xent bench` and tests).
  struct Stats {
    size_t n_nodes = 0;
    size_t n_splits = 0;
    size_t n_copies = 0;
    std::vector<size_t> arena_bytes;  // per backend
    bool reused_plan = false;         // the last run found its plan already made
  };
  const Stats& stats() const { return stats_; }
  uint64_t n_plans() const { return n_plans_; }  // plans made since construction
  // The backend index each node ran on in the last run (same order as graph.nodes()).
  const std::vector<int>& placement() const { return placement_; }

 private:
  int place(const Tensor& node) const;
  int home_of(const Tensor& t) const;  // which backend holds a tensor's storage, -1 if none
  // placement, copies, memory plan, binding, splits and the host buffer of a device output
  void plan(Graph& graph);
  void execute(Graph& graph);  // copies and compute split by split, then the output download

  // A tensor copied to another backend before a node runs.
  struct Copy {
    Tensor* from;  // storage root
    Tensor* to;
    int backend;
    size_t before_node;  // performed just before this node runs
  };
  // A run of consecutive nodes on one backend and the copies made before it.
  struct Split {
    int backend;
    size_t copy_begin, copy_end;  // range of copies_
    std::vector<Tensor*> nodes;
  };

  std::vector<Backend*> backends_;
  std::function<bool(size_t, int)> layer_allowed_;
  int host_index_ = -1;
  std::vector<std::unique_ptr<Buffer>> arenas_;
  std::vector<std::unique_ptr<Buffer>> outputs_;  // host copies of device outputs
  std::vector<int> placement_;
  std::unordered_map<const Tensor*, std::vector<Tensor*>> resident_;
  Stats stats_;
  uint64_t n_plans_ = 0;
  // The plan of the graph last run; the graph's nodes point into copies_pool_.
  uint64_t planned_version_ = 0;  // 0: none
  std::deque<Tensor> copies_pool_;
  std::vector<Copy> copies_;
  std::vector<Split> splits_;
};

}  // namespace xent
