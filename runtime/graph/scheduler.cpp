#include "runtime/graph/scheduler.h"

#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>

#include "formats/error.h"

namespace xent {
namespace {

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// First-fit allocator over offsets of one arena: the planner only needs offsets and
// the high-water mark, not memory.
class OffsetAllocator {
 public:
  explicit OffsetAllocator(size_t alignment) : alignment_(alignment) {}
  size_t alloc(size_t bytes) {
    bytes = align_up(std::max<size_t>(bytes, 1), alignment_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes) {
        const size_t off = it->first;
        if (it->second == bytes) {
          free_.erase(it);
        } else {
          it->first += bytes;
          it->second -= bytes;
        }
        return off;
      }
    }
    const size_t off = top_;
    top_ += bytes;
    return off;
  }
  void release(size_t off, size_t bytes) {
    bytes = align_up(std::max<size_t>(bytes, 1), alignment_);
    free_.push_back({off, bytes});
    std::sort(free_.begin(), free_.end());
    // Merge neighbours so large blocks can be reused.
    std::vector<std::pair<size_t, size_t>> merged;
    for (const auto& f : free_) {
      if (!merged.empty() && merged.back().first + merged.back().second == f.first)
        merged.back().second += f.second;
      else
        merged.push_back(f);
    }
    free_ = std::move(merged);
  }
  size_t high_water() const { return top_; }

 private:
  size_t alignment_;
  size_t top_ = 0;
  std::vector<std::pair<size_t, size_t>> free_;  // (offset, bytes)
};

}  // namespace

Scheduler::Scheduler(std::vector<Backend*> backends,
                     std::function<bool(size_t, int)> layer_allowed)
    : backends_(std::move(backends)), layer_allowed_(std::move(layer_allowed)) {
  for (size_t i = 0; i < backends_.size(); ++i)
    if (backends_[i]->is_host() && host_index_ < 0) host_index_ = static_cast<int>(i);
  if (host_index_ < 0) throw Error("scheduler: a CPU backend is required as the fallback");
  arenas_.resize(backends_.size());
}

void Scheduler::add_resident(const Tensor* original, Tensor* copy) {
  resident_[original].push_back(copy);
}

int Scheduler::home_of(const Tensor& t) const {
  const Tensor* r = t.storage_root();
  if (r->buffer) {
    for (size_t i = 0; i < backends_.size(); ++i)
      if (r->buffer->backend == backends_[i]) return static_cast<int>(i);
  }
  if (r->data) return host_index_;
  return -1;
}

int Scheduler::place(const Tensor& node) const {
  // Attention writes the KV cache, so it must run where the cache lives.
  if (node.op == Op::Attention) {
    const int home = home_of(*node.src[3]);
    const bool masked = node.src[5] != nullptr;
    if (home >= 0 && backends_[home]->supports(node) &&
        (!masked || backends_[home]->supports_attention_mask()))
      return home;
    if (home >= 0)
      throw Error("scheduler: backend " + backends_[home]->name() + " holds the KV cache but cannot run " +
                  (masked ? "masked (token-tree) attention" : "attention"));
  }
  for (size_t i = 0; i < backends_.size(); ++i) {
    const bool allowed = static_cast<int>(i) == host_index_ || layer_allowed_(i, node.layer);
    if (allowed && backends_[i]->supports(node)) return static_cast<int>(i);
  }
  throw Error(std::string("scheduler: no backend supports ") + op_name(node.op) + " on " +
              describe(*node.src[0]));
}

void Scheduler::run(Graph& graph) {
  const bool reuse = planned_version_ != 0 && planned_version_ == graph.version();
  if (!reuse) {
    planned_version_ = 0;  // until the new plan is complete
    plan(graph);
    planned_version_ = graph.version();
    ++n_plans_;
  }
  stats_.reused_plan = reuse;
  execute(graph);
}

void Scheduler::plan(Graph& graph) {
  const std::vector<Tensor*>& nodes = graph.nodes();
  const size_t n_backends = backends_.size();
  stats_ = Stats{};
  stats_.n_nodes = nodes.size();
  placement_.assign(nodes.size(), host_index_);

  // 1. Placement. Views follow their source; other nodes go to the first capable backend.
  std::unordered_map<const Tensor*, int> where;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Tensor* n = nodes[i];
    int b;
    if (n->op == Op::View) {
      auto it = where.find(n->storage_root());
      b = it != where.end() ? it->second : home_of(*n);
      if (b < 0) b = host_index_;
    } else {
      b = place(*n);
    }
    where[n] = b;
    placement_[i] = b;
  }

  // 2. Copies: an operand whose storage is on another backend gets a copy on the
  // consumer's backend (one per root and backend), and views are re-made over it.
  std::deque<Tensor>& copies_pool = copies_pool_;
  std::vector<Copy>& copies = copies_;
  copies_pool.clear();
  copies.clear();
  std::map<std::pair<const Tensor*, int>, Tensor*> copy_of;
  auto storage_backend = [&](const Tensor* root) -> int {
    auto it = where.find(root);
    return it != where.end() ? it->second : home_of(*root);
  };
  std::function<Tensor*(Tensor*, int, size_t)> local = [&](Tensor* t, int b, size_t at) -> Tensor* {
    if (t->op == Op::View) {
      Tensor* src = local(t->src[0], b, at);
      if (src == t->src[0]) return t;
      Tensor& v = copies_pool.emplace_back(*t);
      v.src[0] = src;
      return &v;
    }
    if (storage_backend(t) == b) return t;
    if (auto r = resident_.find(t); r != resident_.end()) {
      for (Tensor* c : r->second)
        if (c->buffer && c->buffer->backend == backends_[b]) return c;
    }
    auto key = std::make_pair(static_cast<const Tensor*>(t), b);
    auto it = copy_of.find(key);
    if (it != copy_of.end()) return it->second;
    Tensor& c = copies_pool.emplace_back();
    c.type = t->type;
    std::copy(t->ne, t->ne + 4, c.ne);
    c.set_contiguous_strides();
    if (!t->is_contiguous()) throw Error("scheduler: cannot copy non-contiguous " + describe(*t));
    c.name = t->name;
    copies.push_back({t, &c, b, at});
    copy_of[key] = &c;
    where[&c] = b;
    return &c;
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    Tensor* n = nodes[i];
    if (n->op == Op::View) continue;
    const int b = placement_[i];
    for (Tensor*& s : n->src)
      if (s) s = local(s, b, i);
  }
  stats_.n_copies = copies.size();

  // 3. Memory plan per backend: allocate at first definition, release after last use.
  std::unordered_map<const Tensor*, size_t> last_use;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (Tensor* s : nodes[i]->src)
      if (s) last_use[s->storage_root()] = i;
  }
  if (Tensor* out = graph.output()) last_use[out->storage_root()] = nodes.size();
  // A copy reads its source when its split starts, after the source's last local use:
  // keep the source's bytes until the consumer runs.
  for (const Copy& c : copies) {
    size_t& u = last_use[c.from];
    u = std::max(u, c.before_node);
  }
  std::vector<OffsetAllocator> alloc;
  for (size_t b = 0; b < n_backends; ++b) alloc.emplace_back(backends_[b]->alignment());
  std::unordered_map<const Tensor*, std::pair<int, size_t>> offset_of;  // root -> (backend, offset)
  std::vector<std::vector<const Tensor*>> dies_after(nodes.size() + 1);
  for (const auto& [t, i] : last_use) dies_after[i].push_back(t);
  // Step 5 performs a split's copies before computing it, so a copy's bytes must be
  // reserved from the first node of the split that needs it, not from its consumer (else
  // two copies of one split could be given the same bytes).
  std::vector<size_t> split_start(nodes.size(), 0);
  for (size_t i = 1; i < nodes.size(); ++i)
    split_start[i] = placement_[i] == placement_[i - 1] ? split_start[i - 1] : i;
  size_t next_copy = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (; next_copy < copies.size() && split_start[copies[next_copy].before_node] <= i; ++next_copy) {
      const Copy& c = copies[next_copy];
      offset_of[c.to] = {c.backend, alloc[c.backend].alloc(c.to->n_bytes())};
    }
    Tensor* n = nodes[i];
    if (n->op != Op::View)
      offset_of[n] = {placement_[i], alloc[placement_[i]].alloc(n->n_bytes())};
    for (const Tensor* t : dies_after[i]) {
      auto it = offset_of.find(t);
      if (it != offset_of.end()) alloc[it->second.first].release(it->second.second, t->n_bytes());
    }
  }

  // 4. Arenas big enough for the plan, then bind storage.
  stats_.arena_bytes.assign(n_backends, 0);
  for (size_t b = 0; b < n_backends; ++b) {
    const size_t need = alloc[b].high_water();
    stats_.arena_bytes[b] = need;
    if (need && (!arenas_[b] || arenas_[b]->size < need))
      arenas_[b] = backends_[b]->alloc_buffer(need + need / 4);
  }
  auto bind = [&](Tensor* t, int b, size_t off) {
    Buffer* buf = arenas_[b].get();
    t->buffer = buf;
    t->offset = off;
    t->data = buf->host ? static_cast<uint8_t*>(buf->host) + off : nullptr;
  };
  for (auto& [t, bo] : offset_of) bind(const_cast<Tensor*>(t), bo.first, bo.second);
  auto bind_view = [&](Tensor* v) {
    const Tensor* src = v->src[0];
    v->buffer = src->buffer;
    v->offset = src->offset + v->view_offset;
    v->data = src->data ? static_cast<uint8_t*>(src->data) + v->view_offset : nullptr;
  };
  for (Tensor* n : nodes)
    if (n->op == Op::View) bind_view(n);
  for (Tensor& c : copies_pool)
    if (c.op == Op::View) bind_view(&c);

  // 5. Splits: runs of nodes on one backend; a copy needed in the middle of a run forces
  // a boundary.
  splits_.clear();
  next_copy = 0;
  for (size_t i = 0; i < nodes.size();) {
    Split sp;
    sp.backend = placement_[i];
    size_t j = i;
    while (j < nodes.size() && placement_[j] == sp.backend) {
      if (j > i && next_copy < copies.size() && copies[next_copy].before_node == j) break;
      sp.nodes.push_back(nodes[j]);
      ++j;
    }
    sp.copy_begin = next_copy;
    while (next_copy < copies.size() && copies[next_copy].before_node < j) ++next_copy;
    sp.copy_end = next_copy;
    splits_.push_back(std::move(sp));
    i = j;
  }
  stats_.n_splits = splits_.size();

  // 6. A device output gets a host buffer to be downloaded into after each run.
  outputs_.clear();
  if (Tensor* out = graph.output(); out && !out->data) {
    Tensor* root = out->storage_root();
    outputs_.push_back(backends_[host_index_]->alloc_buffer(root->n_bytes()));
    out->data = static_cast<uint8_t*>(outputs_.back()->host) + (out->offset - root->offset);
  }
}

void Scheduler::execute(Graph& graph) {
  const size_t n_backends = backends_.size();
  auto do_copy = [&](const Copy& c) {
    Backend* dst = backends_[c.backend];
    const Tensor* from = c.from;
    const size_t n = from->n_bytes();
    if (from->data && (dst->is_host() || !from->buffer || from->buffer->backend->is_host())) {
      dst->upload(*c.to->buffer, c.to->offset, from->data, n);
    } else if (dst->is_host()) {
      from->buffer->backend->download(*from->buffer, from->offset, c.to->data, n);
    } else {
      std::vector<uint8_t> staging(n);
      from->buffer->backend->download(*from->buffer, from->offset, staging.data(), n);
      dst->upload(*c.to->buffer, c.to->offset, staging.data(), n);
    }
  };
  for (const Split& sp : splits_) {
    // Copies read from other backends: wait for them first.
    if (sp.copy_begin < sp.copy_end) {
      for (size_t k = 0; k < n_backends; ++k)
        if (static_cast<int>(k) != sp.backend) backends_[k]->synchronize();
      for (size_t c = sp.copy_begin; c < sp.copy_end; ++c) do_copy(copies_[c]);
    }
    backends_[sp.backend]->compute(sp.nodes);
  }
  for (Backend* b : backends_) b->synchronize();

  // The output must be readable by the caller.
  if (!outputs_.empty()) {
    const Tensor* root = graph.output()->storage_root();
    root->buffer->backend->download(*root->buffer, root->offset, outputs_.back()->host, root->n_bytes());
  }
}

}  // namespace xent
