#include "actors/aggregator/slice_assembler.hpp"

#include <cstring>

namespace melissa {

slice_assembler::result slice_assembler::add(std::uint32_t sim, std::uint32_t field,
                                             std::uint32_t step, std::uint64_t offset,
                                             const float* values, std::uint64_t count) {
  const auto& share = shares_.at(field);
  const std::uint64_t cells = share.size();
  const auto key = std::make_tuple(sim, field, step);
  auto it = partial_.find(key);
  // The whole share in one slice (one client rank, one server rank): no copy of
  // the bookkeeping, only of the values.
  if (it == partial_.end()) {
    partial_step p;
    p.values = std::make_shared<payload_bytes>(cells * sizeof(float), 0);
    p.covered.assign(cells, false);
    it = partial_.emplace(key, std::move(p)).first;
    held_bytes_ += cells * sizeof(float);
  }
  auto& p = it->second;
  auto* out = reinterpret_cast<float*>(p.values->data());
  const std::uint64_t first = offset - share.begin;
  std::uint64_t fresh = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (p.covered[first + i]) continue;
    p.covered[first + i] = true;
    out[first + i] = values[i];
    ++fresh;
  }
  p.filled += fresh;
  result r;
  if (p.filled == cells) {
    r.outcome = verdict::complete;
    r.step = std::move(p.values);
    held_bytes_ -= cells * sizeof(float);
    partial_.erase(it);
  } else {
    r.outcome = fresh == 0 ? verdict::duplicate : verdict::partial;
  }
  return r;
}

void slice_assembler::drop(std::uint32_t sim) {
  for (auto it = partial_.begin(); it != partial_.end();) {
    if (std::get<0>(it->first) == sim) {
      held_bytes_ -= it->second.covered.size() * sizeof(float);
      it = partial_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace melissa
