// Statistics mode: the slices that a simulation's client ranks send for one
// time step of one field, assembled into this server rank's owned share of
// that step. Plain C++, no CAF.
//
// A slice is copied into the step's buffer cell by cell, skipping cells
// already there (a retried attempt resends what its predecessor had sent):
// the step is complete, and handed out once, when every cell of the share is
// in. A slice that brings no new cell is a duplicate.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "messages/payload.hpp"
#include "messages/wire.hpp"

namespace melissa {

class slice_assembler {
 public:
  // shares[field]: the cells of each field this rank owns.
  explicit slice_assembler(std::vector<wire::cell_range> shares) : shares_(std::move(shares)) {}

  enum class verdict { partial, complete, duplicate };
  struct result {
    verdict outcome = verdict::partial;
    // complete: the share's values, float32, in cell order (shares[field].size() of them).
    std::shared_ptr<payload_bytes> step;
  };

  // Values [offset, offset + count) of (sim, field, step); the caller has
  // checked that they lie in the share (client_session::admit_extension).
  result add(std::uint32_t sim, std::uint32_t field, std::uint32_t step, std::uint64_t offset,
             const float* values, std::uint64_t count);

  // Forgets the partial steps of a simulation (it failed for good).
  void drop(std::uint32_t sim);

  std::size_t partial_steps() const { return partial_.size(); }
  std::uint64_t held_bytes() const { return held_bytes_; }
  const wire::cell_range& share(std::uint32_t field) const { return shares_.at(field); }

 private:
  struct partial_step {
    std::shared_ptr<payload_bytes> values;
    std::vector<bool> covered;
    std::uint64_t filled = 0;
  };
  std::vector<wire::cell_range> shares_;
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>, partial_step> partial_;
  std::uint64_t held_bytes_ = 0;
};

}  // namespace melissa
