// The statistics of one server rank in statistics mode: for every field and
// time step, a field_statistics (actors/statistics/) over the cells this rank
// owns, fed as each simulation's step arrives; with Sobol, the steps of
// pick-freeze groups held until the group's p + 2 members' step t are all in.
// Plain C++, no CAF: the statistics sink actor (statistics_sink.cpp) owns one.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "actors/statistics/field_statistics.hpp"
#include "config/study.hpp"
#include "messages/payload.hpp"
#include "messages/wire.hpp"

namespace melissa {

struct statistics_core_settings {
  std::vector<std::string> field_names;
  std::vector<wire::cell_range> shares;   // per field: the cells this rank owns
  std::vector<std::uint64_t> field_sizes; // per field: global size
  std::uint32_t time_steps = 1;           // client.steps
  config::statistics_config statistics;
  std::size_t parameters = 0;             // p
  std::uint32_t group_size = 1;           // p + 2 with Sobol, else 1
  std::uint64_t simulations = 0;          // of the study (quantiles' step rule)
};

// Builds the settings of rank `rank` of `ranks` from the study.
statistics_core_settings statistics_settings_for(const config::study_config& study,
                                                 std::uint32_t rank, std::uint32_t ranks);

class statistics_core {
 public:
  explicit statistics_core(statistics_core_settings settings);

  // One simulation's step of one field: the share's values (shares[field].size()
  // float32). Folded into the moments at once; with Sobol also held (the
  // buffer is shared, not copied) until its group's members all sent step t.
  // Returns false for a (sim, field, step) already folded in (not folded again).
  bool fold(std::uint32_t sim, std::uint32_t field, std::uint32_t step,
            std::shared_ptr<const payload_bytes> values);

  // Bytes of group steps held, waiting for other members.
  std::uint64_t held_bytes() const { return held_bytes_; }
  bool over_budget() const { return held_bytes_ > settings_.statistics.group_budget_bytes(); }

  // What summary.json and `melissa-shell stats` show (JSON text):
  // simulations and groups folded in (at the last time step), the widest
  // Sobol interval at the last step that has groups, the groups left out.
  std::string report() const;
  // Simulations whose every step of every field is folded in.
  std::uint64_t simulations_complete() const;
  // Groups folded into the Sobol estimates at every step of every field.
  std::uint64_t groups_complete() const;

  // Writes <dir>/<field>/<stat>.npy: this rank's share of each file, which
  // all ranks create with the same header and size; one assembled file.
  void write(const std::string& dir) const;

  // Checkpoints: every accumulator (field_statistics::save/load), the
  // bookkeeping and the held group steps (a member complete in a checkpoint
  // is not resent, so its held steps must come back for its group's Sobol
  // terms). load() throws std::runtime_error for another study's state.
  void save(std::ostream& out) const;
  void load(std::istream& in);

  const statistics_core_settings& settings() const { return settings_; }

 private:
  field_statistics& at(std::uint32_t field, std::uint32_t step);
  statistics_options options() const;

  statistics_core_settings settings_;
  // [field][step], made on first use.
  std::vector<std::vector<std::unique_ptr<field_statistics>>> stats_;
  // (field, step) -> sims folded in.
  std::vector<std::vector<std::set<std::uint32_t>>> folded_;
  // (group, field, step) -> the members' buffers (group_size entries).
  std::map<std::tuple<std::uint64_t, std::uint32_t, std::uint32_t>,
           std::vector<std::shared_ptr<const payload_bytes>>>
      held_;
  std::uint64_t held_bytes_ = 0;
  // sim -> steps folded in (all fields).
  std::map<std::uint32_t, std::uint64_t> steps_of_;
  // group -> group steps folded into Sobol (all fields).
  std::map<std::uint64_t, std::uint64_t> group_steps_;
};

// "threshold_300", "quantile_0.05": shortest text of a value that reads back the same.
std::string value_name(double v);

}  // namespace melissa
