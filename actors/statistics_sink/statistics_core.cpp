#include "actors/statistics_sink/statistics_core.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <istream>
#include <limits>
#include <ostream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "config/design.hpp"
#include "messages/npy.hpp"

namespace melissa {

std::string value_name(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

statistics_core_settings statistics_settings_for(const config::study_config& study,
                                                 std::uint32_t rank, std::uint32_t ranks) {
  statistics_core_settings s;
  for (const auto& f : study.fields) {
    s.field_names.push_back(f.name);
    s.field_sizes.push_back(f.size);
    s.shares.push_back(wire::owned_share(f.size, rank, ranks));
  }
  s.time_steps = std::max<std::uint32_t>(1, study.client.steps);
  s.statistics = study.statistics;
  s.parameters = study.parameters.names.size();
  s.group_size = config::group_size(study);
  s.simulations = config::simulation_count(study);
  return s;
}

statistics_core::statistics_core(statistics_core_settings settings) : settings_(std::move(settings)) {
  const auto fields = settings_.field_names.size();
  stats_.resize(fields);
  folded_.resize(fields);
  for (std::size_t f = 0; f < fields; ++f) {
    stats_[f].resize(settings_.time_steps);
    folded_[f].resize(settings_.time_steps);
  }
  validate(options());  // a bad configuration fails here, not at the first step
}

statistics_options statistics_core::options() const {
  statistics_options o;
  o.moments = static_cast<int>(settings_.statistics.moments);
  o.min_max = settings_.statistics.min_max;
  o.thresholds = settings_.statistics.thresholds;
  o.quantiles = settings_.statistics.quantiles;
  o.planned_simulations = settings_.simulations;
  o.sobol = settings_.statistics.sobol;
  o.parameters = settings_.parameters;
  return o;
}

field_statistics& statistics_core::at(std::uint32_t field, std::uint32_t step) {
  auto& slot = stats_.at(field).at(step);
  if (!slot) slot = std::make_unique<field_statistics>(options(), settings_.shares[field].size());
  return *slot;
}

bool statistics_core::fold(std::uint32_t sim, std::uint32_t field, std::uint32_t step,
                           std::shared_ptr<const payload_bytes> values) {
  const std::size_t cells = settings_.shares.at(field).size();
  if (step >= settings_.time_steps)
    throw std::invalid_argument("time step " + std::to_string(step) + " is beyond client.steps = " +
                                std::to_string(settings_.time_steps));
  if (!values || values->size() != cells * sizeof(float))
    throw std::invalid_argument("a step of field '" + settings_.field_names[field] + "' with " +
                                std::to_string(values ? values->size() / sizeof(float) : 0) +
                                " values; this rank owns " + std::to_string(cells));
  if (!folded_[field][step].insert(sim).second) return false;
  const auto* data = reinterpret_cast<const float*>(values->data());
  at(field, step).add(data, cells, sim);
  ++steps_of_[sim];
  if (settings_.group_size <= 1) return true;
  const auto member = config::member_of(sim, settings_.group_size);
  auto& members = held_[{member.group, field, step}];
  if (members.empty()) members.resize(settings_.group_size);
  members[member.member] = std::move(values);
  held_bytes_ += cells * sizeof(float);
  if (std::any_of(members.begin(), members.end(), [](const auto& m) { return !m; })) return true;
  std::vector<const float*> pointers;
  for (const auto& m : members) pointers.push_back(reinterpret_cast<const float*>(m->data()));
  at(field, step).add_group(pointers.data(), pointers.size(), cells);
  ++group_steps_[member.group];
  held_bytes_ -= settings_.group_size * cells * sizeof(float);
  held_.erase({member.group, field, step});
  return true;
}

std::uint64_t statistics_core::simulations_complete() const {
  const std::uint64_t all = std::uint64_t{settings_.time_steps} * settings_.field_names.size();
  return static_cast<std::uint64_t>(std::count_if(
      steps_of_.begin(), steps_of_.end(), [&](const auto& e) { return e.second == all; }));
}

std::uint64_t statistics_core::groups_complete() const {
  const std::uint64_t all = std::uint64_t{settings_.time_steps} * settings_.field_names.size();
  return static_cast<std::uint64_t>(std::count_if(
      group_steps_.begin(), group_steps_.end(), [&](const auto& e) { return e.second == all; }));
}

std::string statistics_core::report() const {
  nlohmann::json r = {{"kind", "statistics"},
                      {"simulations_folded", simulations_complete()},
                      {"held_group_bytes", held_bytes_}};
  if (settings_.group_size > 1) {
    r["groups_folded"] = groups_complete();
    // The widest interval at the last time step that has groups, over the fields.
    std::optional<double> widest;
    std::uint32_t at_step = 0;
    for (std::uint32_t t = settings_.time_steps; t-- > 0 && !widest;) {
      for (const auto& per_step : stats_) {
        if (!per_step[t] || per_step[t]->groups() < 2) continue;
        const double w = per_step[t]->widest_sobol_interval();
        widest = widest ? std::max(*widest, w) : w;
        at_step = t;
      }
    }
    if (widest) {
      r["widest_sobol_interval"] = *widest;
      r["widest_sobol_interval_step"] = at_step;
    } else {
      r["widest_sobol_interval"] = nullptr;
    }
    // Groups some of whose members' steps are in but not all: left out of Sobol.
    const std::uint64_t all = std::uint64_t{settings_.time_steps} * settings_.field_names.size();
    std::map<std::uint64_t, std::set<std::uint32_t>> seen;  // group -> members with any step
    for (const auto& [sim, steps] : steps_of_) {
      (void)steps;
      const auto m = config::member_of(sim, settings_.group_size);
      seen[m.group].insert(sim);
    }
    nlohmann::json left = nlohmann::json::array();
    for (const auto& [group, sims] : seen) {
      const auto it = group_steps_.find(group);
      if (it != group_steps_.end() && it->second == all) continue;
      nlohmann::json missing = nlohmann::json::array();
      for (std::uint32_t m = 0; m < settings_.group_size; ++m) {
        const auto sim = static_cast<std::uint32_t>(group * settings_.group_size + m);
        const auto s = steps_of_.find(sim);
        const std::uint64_t got = s == steps_of_.end() ? 0 : s->second;
        if (got < all)
          missing.push_back({{"simulation", sim}, {"steps_folded", got}, {"steps_expected", all}});
      }
      left.push_back({{"group", group},
                      {"why", "members did not deliver every step (failed for good or not ended)"},
                      {"members_missing_steps", missing}});
    }
    r["groups_left_out"] = left;
  }
  return r.dump();
}

namespace {

// One .npy of shape {time steps, [parameters,] field size}: this rank writes
// its cells of every row; every rank writes the same header and size.
class share_file {
 public:
  share_file(const std::string& path, const char* descr, std::vector<std::size_t> shape,
             std::size_t item)
      : path_(path), item_(item), shape_(std::move(shape)) {
    const std::string head = npy::header(descr, shape_);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot open");
    std::uint64_t total = 1;
    for (auto d : shape_) total *= d;
    data_at_ = head.size();
    put(head.data(), head.size(), 0);
    if (::ftruncate(fd_, static_cast<off_t>(data_at_ + total * item_)) != 0) fail("cannot size");
  }
  ~share_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  // `count` items of row `row` (all leading indices flattened) from column `column`.
  void write(std::uint64_t row, std::uint64_t column, const void* data, std::size_t count) {
    const std::uint64_t at = data_at_ + (row * shape_.back() + column) * item_;
    put(data, count * item_, at);
  }
  void close() {
    if (::fsync(fd_) != 0 && errno != EINVAL) fail("cannot sync");
    if (::close(fd_) != 0) fail("cannot close");
    fd_ = -1;
  }

 private:
  void put(const void* data, std::size_t n, std::uint64_t at) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write");
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      at += static_cast<std::uint64_t>(w);
    }
  }
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string(what) + " " + path_ + ": " + std::strerror(errno));
  }
  std::string path_;
  std::size_t item_;
  std::vector<std::size_t> shape_;
  int fd_ = -1;
  std::uint64_t data_at_ = 0;
};

}  // namespace

void statistics_core::write(const std::string& dir) const {
  const auto& cfg = settings_.statistics;
  const std::size_t steps = settings_.time_steps;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t f = 0; f < settings_.field_names.size(); ++f) {
    const auto folder = dir + "/" + settings_.field_names[f];
    std::filesystem::create_directories(folder);
    const auto share = settings_.shares[f];
    const std::size_t cells = share.size();
    const std::size_t size = settings_.field_sizes[f];
    // A per-step statistic of doubles (NaN where no simulation sent that step).
    auto per_step = [&](const std::string& name, auto get) {
      share_file out(folder + "/" + name + ".npy", npy::descr<double>(), {steps, size}, 8);
      for (std::size_t t = 0; t < steps; ++t) {
        const auto& s = stats_[f][t];
        const std::vector<double> row = s ? get(*s) : std::vector<double>(cells, nan);
        if (cells) out.write(t, share.begin, row.data(), cells);
      }
      out.close();
    };
    if (cfg.moments >= 1) per_step("mean", [](const field_statistics& s) { return s.mean(); });
    if (cfg.moments >= 2) per_step("variance", [](const field_statistics& s) { return s.variance(); });
    if (cfg.moments >= 3) per_step("skewness", [](const field_statistics& s) { return s.skewness(); });
    if (cfg.moments >= 4) per_step("kurtosis", [](const field_statistics& s) { return s.kurtosis(); });
    if (cfg.min_max) {
      per_step("min", [](const field_statistics& s) { return s.min(); });
      per_step("max", [](const field_statistics& s) { return s.max(); });
    }
    for (std::size_t i = 0; i < cfg.quantiles.size(); ++i)
      per_step("quantile_" + value_name(cfg.quantiles[i]),
               [i](const field_statistics& s) { return s.quantile(i); });
    for (std::size_t i = 0; i < cfg.thresholds.size(); ++i) {
      share_file out(folder + "/threshold_" + value_name(cfg.thresholds[i]) + ".npy",
                     npy::descr<std::uint64_t>(), {steps, size}, 8);
      for (std::size_t t = 0; t < steps; ++t) {
        const auto& s = stats_[f][t];
        const auto row = s ? s->threshold_count(i) : std::vector<std::uint64_t>(cells, 0);
        if (cells) out.write(t, share.begin, row.data(), cells);
      }
      out.close();
    }
    if (!cfg.sobol) continue;
    const std::size_t p = settings_.parameters;
    for (const bool first : {true, false}) {
      const std::string base = first ? "sobol_first" : "sobol_total";
      share_file value(folder + "/" + base + ".npy", npy::descr<double>(), {steps, p, size}, 8);
      share_file low(folder + "/" + base + "_low.npy", npy::descr<double>(), {steps, p, size}, 8);
      share_file high(folder + "/" + base + "_high.npy", npy::descr<double>(), {steps, p, size}, 8);
      for (std::size_t t = 0; t < steps; ++t)
        for (std::size_t k = 0; k < p; ++k) {
          const auto& s = stats_[f][t];
          field_statistics::sobol_index idx;
          if (s) idx = first ? s->sobol_first(k) : s->sobol_total(k);
          else idx.value = idx.low = idx.high = std::vector<double>(cells, nan);
          if (!cells) continue;
          value.write(t * p + k, share.begin, idx.value.data(), cells);
          low.write(t * p + k, share.begin, idx.low.data(), cells);
          high.write(t * p + k, share.begin, idx.high.data(), cells);
        }
      value.close();
      low.close();
      high.close();
    }
  }
}

namespace {
// "STATCOR2": version 2 adds the held group steps.
constexpr std::uint64_t core_magic = 0x32524f4354415453ull;
void put64(std::ostream& out, std::uint64_t v) { out.write(reinterpret_cast<const char*>(&v), 8); }
std::uint64_t get64(std::istream& in) {
  std::uint64_t v = 0;
  if (!in.read(reinterpret_cast<char*>(&v), 8)) throw std::runtime_error("statistics state: truncated");
  return v;
}
}  // namespace

void statistics_core::save(std::ostream& out) const {
  put64(out, core_magic);
  put64(out, stats_.size());
  put64(out, settings_.time_steps);
  for (std::size_t f = 0; f < stats_.size(); ++f)
    for (std::size_t t = 0; t < stats_[f].size(); ++t) {
      put64(out, folded_[f][t].size());
      for (auto sim : folded_[f][t]) put64(out, sim);
      put64(out, stats_[f][t] ? 1 : 0);
      if (stats_[f][t]) stats_[f][t]->save(out);
    }
  put64(out, group_steps_.size());
  for (const auto& [g, n] : group_steps_) {
    put64(out, g);
    put64(out, n);
  }
  // The held group steps: folded into the moments but waiting for their
  // group's other members. Without them a member complete in a checkpoint
  // (never resent) would leave its group out of the Sobol estimates.
  put64(out, held_.size());
  for (const auto& [key, members] : held_) {
    const auto& [g, field, step] = key;
    put64(out, g);
    put64(out, field);
    put64(out, step);
    put64(out, members.size());
    for (const auto& m : members) {
      put64(out, m ? m->size() : ~std::uint64_t{0});
      if (m) out.write(m->data(), static_cast<std::streamsize>(m->size()));
    }
  }
  if (!out) throw std::runtime_error("statistics state: cannot write");
}

void statistics_core::load(std::istream& in) {
  if (get64(in) != core_magic) throw std::runtime_error("statistics state: bad magic");
  if (get64(in) != stats_.size() || get64(in) != settings_.time_steps)
    throw std::runtime_error("statistics state: another study's fields or time steps");
  steps_of_.clear();
  held_.clear();
  held_bytes_ = 0;
  for (std::size_t f = 0; f < stats_.size(); ++f)
    for (std::size_t t = 0; t < stats_[f].size(); ++t) {
      folded_[f][t].clear();
      for (auto n = get64(in); n > 0; --n) {
        const auto sim = static_cast<std::uint32_t>(get64(in));
        folded_[f][t].insert(sim);
        ++steps_of_[sim];
      }
      stats_[f][t].reset();
      if (get64(in)) stats_[f][t] = std::make_unique<field_statistics>(field_statistics::load(in));
    }
  group_steps_.clear();
  for (auto n = get64(in); n > 0; --n) {
    const auto g = get64(in);
    group_steps_[g] = get64(in);
  }
  for (auto n = get64(in); n > 0; --n) {
    const auto g = get64(in);
    const auto field = static_cast<std::uint32_t>(get64(in));
    const auto step = static_cast<std::uint32_t>(get64(in));
    const auto count = get64(in);
    if (field >= stats_.size() || step >= settings_.time_steps || count != settings_.group_size)
      throw std::runtime_error("statistics state: a held group step of another study");
    const std::uint64_t bytes = settings_.shares[field].size() * sizeof(float);
    auto& members = held_[{g, field, step}];
    members.resize(count);
    for (std::uint64_t m = 0; m < count; ++m) {
      const auto size = get64(in);
      if (size == ~std::uint64_t{0}) continue;
      if (size != bytes) throw std::runtime_error("statistics state: a held step of the wrong size");
      auto buffer = std::make_shared<payload_bytes>(size);  // filled by the read below
      if (!in.read(buffer->data(), static_cast<std::streamsize>(size)))
        throw std::runtime_error("statistics state: truncated");
      members[m] = std::move(buffer);
      held_bytes_ += size;
    }
  }
}

}  // namespace melissa
