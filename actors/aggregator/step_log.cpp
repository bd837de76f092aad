#include "actors/aggregator/step_log.hpp"

namespace melissa {

// --- simulation: bitsets or, once complete, one series record ---

std::uint32_t step_log::simulation::field_count() const {
  return compact_ ? series_.fields : static_cast<std::uint32_t>(received_.size());
}

std::uint32_t step_log::simulation::field_length(std::uint32_t field) const {
  if (field >= field_count()) return 0;
  return compact_ ? series_.length : static_cast<std::uint32_t>(received_[field].size());
}

bool step_log::simulation::has(std::uint32_t field, std::uint32_t step) const {
  if (!compact_) {
    if (field >= received_.size()) return false;
    const auto& bits = received_[field];
    return step < bits.size() && bits[step];
  }
  const auto& s = series_;
  if (field >= s.fields || step < s.first || s.count == 0) return false;
  const std::uint32_t offset = step - s.first;
  return offset % s.stride == 0 && offset / s.stride < s.count;
}

std::vector<bool> step_log::simulation::field_bits(std::uint32_t field) const {
  if (!compact_) return field < received_.size() ? received_[field] : std::vector<bool>{};
  std::vector<bool> bits(field_length(field), false);
  if (field < series_.fields)
    for (std::uint64_t i = 0, t = series_.first; i < series_.count; ++i, t += series_.stride) bits[t] = true;
  return bits;
}

void step_log::simulation::add_field(std::vector<bool> bits) {
  expand();
  received_.push_back(std::move(bits));
}

bool step_log::simulation::compact() {
  if (compact_) return true;
  series s;
  s.fields = static_cast<std::uint32_t>(received_.size());
  for (std::uint32_t f = 0; f < s.fields; ++f) {
    // This field's set steps must form first + i * stride, i < count.
    const auto& bits = received_[f];
    series mine;
    mine.fields = s.fields;
    mine.length = static_cast<std::uint32_t>(bits.size());
    std::uint32_t last = 0;
    for (std::uint32_t t = 0; t < bits.size(); ++t) {
      if (!bits[t]) continue;
      if (mine.count == 0) {
        mine.first = t;
      } else if (mine.count == 1) {
        mine.stride = t - mine.first;
      } else if (t - last != mine.stride) {
        return false;
      }
      last = t;
      ++mine.count;
    }
    if (f == 0) {
      s = mine;
    } else if (mine.length != s.length || mine.count != s.count ||
               (mine.count > 0 && mine.first != s.first) || (mine.count > 1 && mine.stride != s.stride)) {
      return false;
    }
  }
  series_ = s;
  received_.clear();
  received_.shrink_to_fit();
  compact_ = true;
  return true;
}

void step_log::simulation::expand() {
  if (!compact_) return;
  std::vector<std::vector<bool>> bits;
  bits.reserve(series_.fields);
  for (std::uint32_t f = 0; f < series_.fields; ++f) bits.push_back(field_bits(f));
  received_ = std::move(bits);
  series_ = series{};
  compact_ = false;
}

// --- step_log ---

step_log::simulation& step_log::at(std::uint32_t sim) {
  if (cache_.sim && cache_.id == sim) return *cache_.sim;
  auto& s = sims_[sim];
  cache_.id = sim;
  cache_.sim = &s;
  return s;
}

const step_log::simulation* step_log::find(std::uint32_t sim) const {
  if (cache_.sim && cache_.id == sim) return cache_.sim;
  auto it = sims_.find(sim);
  if (it == sims_.end()) return nullptr;
  cache_.id = sim;
  cache_.sim = const_cast<simulation*>(&it->second);
  return &it->second;
}

bool step_log::insert(std::uint32_t sim, std::uint32_t field, std::uint32_t step) {
  auto& s = at(sim);
  // A resent step of a complete simulation is a duplicate; a step its series
  // lacks (a longer rerun) brings the bitsets back.
  if (s.has(field, step)) {
    ++s.duplicates;
    ++total_duplicates_;
    return false;
  }
  s.expand();
  if (s.received_.size() <= field) s.received_.resize(field + 1);
  auto& bits = s.received_[field];
  if (bits.size() <= step) bits.resize(step + 1, false);
  bits[step] = true;
  ++s.stored;
  ++total_stored_;
  return true;
}

bool step_log::contains(std::uint32_t sim, std::uint32_t field, std::uint32_t step) const {
  const auto* s = find(sim);
  return s && s->has(field, step);
}

void step_log::forget(std::uint32_t sim, std::uint32_t field, std::uint32_t step) {
  if (!contains(sim, field, step)) return;
  auto& s = at(sim);
  s.expand();
  s.received_[field][step] = false;
  --s.stored;
  --total_stored_;
}

void step_log::note_attempt(std::uint32_t sim, std::uint32_t attempt) {
  at(sim).attempts.insert(attempt);
}

std::uint64_t step_log::missing_steps(std::uint32_t sim, std::uint32_t fields, std::uint32_t steps,
                                      std::uint32_t rank, std::uint32_t ranks) const {
  std::uint64_t missing = 0;
  const std::uint32_t first = ranks == 0 ? 0 : (rank + ranks - sim % ranks) % ranks;
  for (std::uint32_t field = 0; field < fields; ++field)
    for (std::uint64_t t = first; t < steps; t += ranks == 0 ? 1 : ranks)
      if (!contains(sim, field, static_cast<std::uint32_t>(t))) ++missing;
  return missing;
}

bool step_log::mark_done(std::uint32_t sim) {
  auto& s = at(sim);
  if (compact_complete_) s.compact();
  if (s.done) return false;
  s.done = true;
  ++done_count_;
  return true;
}

step_log step_log::restore(std::map<std::uint32_t, simulation> sims) {
  step_log log;
  for (auto& [sim, s] : sims) {
    log.total_stored_ += s.stored;
    log.total_duplicates_ += s.duplicates;
    if (s.done) {
      ++log.done_count_;
      s.compact();
    }
  }
  log.sims_ = std::move(sims);
  return log;
}

std::uint32_t step_log::compacted_count() const {
  std::uint32_t n = 0;
  for (const auto& [id, s] : sims_) n += s.compacted() ? 1 : 0;
  return n;
}

}  // namespace melissa
