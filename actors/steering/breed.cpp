#include "actors/steering/breed.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "config/design.hpp"

namespace melissa {

namespace {
constexpr int breed_state_format = 1;
}

const char* to_string(point_origin o) {
  return o == point_origin::proposal ? "proposal" : "uniform";
}

double breed_random::normal() {
  // u1 in (0, 1] so that log(u1) is finite.
  const double u1 = static_cast<double>((engine_() >> 11) + 1) * 0x1.0p-53;
  const double u2 = uniform01();
  constexpr double two_pi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

std::vector<double> importance_weights(const std::vector<double>& q) {
  double sum = 0;
  for (double v : q) sum += v;
  if (q.empty() || !(sum > 0)) return std::vector<double>(q.size(), 1.0);
  const double mean = sum / static_cast<double>(q.size());
  std::vector<double> w;
  w.reserve(q.size());
  for (double v : q) w.push_back(v / mean);
  return w;
}

std::vector<std::size_t> multinomial_draw(const std::vector<double>& weights, std::size_t draws,
                                          breed_random& rng) {
  std::vector<std::size_t> picked;
  if (weights.empty()) return picked;
  std::vector<double> cumulative(weights.size());
  double total = 0;
  for (std::size_t j = 0; j < weights.size(); ++j) {
    total += std::max(weights[j], 0.0);
    cumulative[j] = total;
  }
  picked.reserve(draws);
  for (std::size_t i = 0; i < draws; ++i) {
    if (!(total > 0)) {  // no weight anywhere: every member alike
      picked.push_back(static_cast<std::size_t>(rng.uniform01() * weights.size()));
      continue;
    }
    const double u = rng.uniform01() * total;
    // First j with cumulative[j] > u: members of weight 0 are never picked.
    auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    if (it == cumulative.end()) --it;  // u rounded up to total
    picked.push_back(static_cast<std::size_t>(it - cumulative.begin()));
  }
  return picked;
}

proposal_draw draw_around(const std::vector<double>& location, double sigma,
                          const std::vector<config::parameter_bounds>& bounds, breed_random& rng) {
  proposal_draw out;
  out.point.resize(location.size());
  out.width = sigma;
  for (std::uint32_t attempt = 0; attempt <= max_retries; ++attempt) {
    if (attempt > 0) {  // too wide here: narrow this draw's next try only
      out.width *= sigma_shrink;
      ++out.shrinks;
    }
    ++out.draws;
    bool inside = true;
    for (std::size_t j = 0; j < location.size(); ++j) {
      const double range = bounds[j].hi - bounds[j].lo;
      out.point[j] = location[j] + out.width * range * rng.normal();
      inside = inside && out.point[j] >= bounds[j].lo && out.point[j] < bounds[j].hi;  // [lo, hi), as designs
    }
    if (inside) return out;
  }
  out.point = location;
  out.kept_location = true;
  return out;
}

double proposal_share(const breed_settings& s, std::uint64_t resampling) {
  if (s.r_steps == 0) return s.r_end;
  const double t = static_cast<double>(std::min<std::uint64_t>(resampling, s.r_steps)) /
                   static_cast<double>(s.r_steps);
  return s.r_start + (s.r_end - s.r_start) * t;
}

breed_steering::breed_steering(breed_settings settings)
    : settings_(std::move(settings)), rng_(settings_.seed) {
  if (settings_.bounds.empty()) throw std::invalid_argument("breed: no parameter bounds");
  for (const auto& b : settings_.bounds)
    if (!(b.lo < b.hi)) throw std::invalid_argument("breed: every parameter needs lo < hi");
  if (settings_.period == 0) throw std::invalid_argument("breed: period must be >= 1 batch");
  if (settings_.window == 0) throw std::invalid_argument("breed: window must be >= 1 simulation");
  if (!(settings_.sigma > 0) || !std::isfinite(settings_.sigma))
    throw std::invalid_argument("breed: sigma must be > 0");
  for (double r : {settings_.r_start, settings_.r_end})
    if (!(r >= 0 && r <= 1)) throw std::invalid_argument("breed: r_start and r_end must lie in [0, 1]");
}

bool breed_steering::record_batch(const std::vector<std::uint32_t>& sims,
                                  const std::vector<std::uint32_t>& steps,
                                  const std::vector<float>& losses, double mean, double stddev) {
  if (sims.size() != steps.size() || sims.size() != losses.size())
    throw std::invalid_argument("breed: a batch needs as many sim ids, steps and losses");
  ++batches_;
  if (std::isfinite(mean) && std::isfinite(stddev)) {
    for (std::size_t i = 0; i < sims.size(); ++i) {
      const double loss = losses[i];
      if (!std::isfinite(loss)) continue;
      const double delta = stddev > 0 ? std::max(loss - mean, 0.0) / stddev : 0.0;
      auto& sample = steps_[(std::uint64_t{sims[i]} << 32) | steps[i]];
      auto& sim = sims_[sims[i]];
      const double before = sample.mean;
      ++sample.count;
      sample.mean += (delta - sample.mean) / static_cast<double>(sample.count);
      if (sample.count == 1) {
        ++sim.steps;
        sim.sum_of_step_means += sample.mean;
      } else {
        sim.sum_of_step_means += sample.mean - before;
      }
      sim.last_update = ++update_counter_;
    }
  }
  return batches_ % settings_.period == 0;
}

void breed_steering::sim_completed(std::uint32_t sim, std::vector<double> parameters,
                                   std::uint64_t steps) {
  if (parameters.size() != settings_.bounds.size())
    throw std::invalid_argument("breed: simulation " + std::to_string(sim) + " has " +
                                std::to_string(parameters.size()) + " parameters, the bounds " +
                                std::to_string(settings_.bounds.size()));
  completed_[sim] = completed_sim{std::move(parameters), steps};
}

bool breed_steering::fully_seen(std::uint32_t sim, const completed_sim& c) const {
  auto it = sims_.find(sim);
  return it != sims_.end() && it->second.steps > 0 && it->second.steps >= c.steps;
}

double breed_steering::q_of(std::uint32_t sim) const {
  auto it = sims_.find(sim);
  if (it == sims_.end() || it->second.steps == 0) return -1;
  return it->second.sum_of_step_means / static_cast<double>(it->second.steps);
}

std::pair<double, std::uint64_t> breed_steering::deviation_of(std::uint32_t sim,
                                                              std::uint32_t step) const {
  auto it = steps_.find((std::uint64_t{sim} << 32) | step);
  if (it == steps_.end()) return {-1, 0};
  return {it->second.mean, it->second.count};
}

std::vector<std::uint32_t> breed_steering::population() const {
  // (last update, sim): update counters are unique, so the order is total and
  // does not depend on the hash maps' iteration order.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> candidates;
  for (const auto& [sim, c] : completed_)
    if (fully_seen(sim, c)) candidates.emplace_back(sims_.at(sim).last_update, sim);
  const std::size_t n = std::min(settings_.window, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n),
                    candidates.end(), std::greater<>());
  std::vector<std::uint32_t> members;
  members.reserve(n);
  for (std::size_t i = 0; i < n; ++i) members.push_back(candidates[i].second);
  return members;
}

std::vector<resampled_point> breed_steering::resample(const submission_view& view, double now) {
  std::vector<resampled_point> points;
  // Pending ids past k + m that have not completed (a stale view could name some).
  std::vector<std::uint32_t> pending;
  for (std::uint64_t id = view.first_changeable(); id < view.count; ++id)
    if (!completed_.count(static_cast<std::uint32_t>(id))) pending.push_back(static_cast<std::uint32_t>(id));
  if (pending.empty()) {
    last_skip_ = "no simulation pending past k + m";
    return points;
  }
  const std::vector<std::uint32_t> members = population();
  if (members.empty()) {
    last_skip_ = "no completed simulation has had all its steps seen by the trainer yet";
    return points;
  }
  last_skip_.clear();

  std::vector<double> q;
  q.reserve(members.size());
  for (auto sim : members) q.push_back(q_of(sim));
  const std::vector<double> weights = importance_weights(q);

  const std::uint64_t s = resamplings_ + 1;  // the first resampling is s = 1 (i = s * period)
  const double r = proposal_share(settings_, s);
  // Draw order: the origin of every point, then the locations of the
  // proposal points, then the uniform points, then the Gaussian draws.
  std::vector<bool> from_proposal(pending.size());
  std::size_t proposals = 0;
  for (std::size_t k = 0; k < pending.size(); ++k) {
    from_proposal[k] = rng_.uniform01() < r;
    proposals += from_proposal[k] ? 1 : 0;
  }
  const std::vector<std::size_t> locations = multinomial_draw(weights, proposals, rng_);
  const config::design_matrix uniform_points =
      config::draw_design(config::sampler_kind::uniform, settings_.bounds,
                          pending.size() - proposals, rng_.next());

  resampling_record record;
  record.s = s;
  record.r = r;
  record.time = now;
  record.population = members.size();
  record.proposal = proposals;
  points.reserve(pending.size());
  std::size_t next_location = 0, next_uniform = 0;
  for (std::size_t k = 0; k < pending.size(); ++k) {
    resampled_point p;
    p.sim = pending[k];
    provenance_entry prov;
    prov.resampling = s;
    if (from_proposal[k]) {
      const std::uint32_t member = members[locations[next_location++]];
      // Every draw starts from the configured width.
      proposal_draw d = draw_around(completed_.at(member).parameters, settings_.sigma,
                                    settings_.bounds, rng_);
      record.shrinks += d.shrinks;
      record.fallbacks += d.kept_location ? 1 : 0;
      p.parameters = std::move(d.point);
      p.origin = point_origin::proposal;
      prov.origin = point_origin::proposal;
      prov.location = member;
    } else {
      p.parameters = uniform_points[next_uniform++];
      p.origin = point_origin::uniform;
      prov.origin = point_origin::uniform;
    }
    provenance_[p.sim] = prov;
    points.push_back(std::move(p));
  }
  record.points = points.size();

  shrinks_ += record.shrinks;
  fallbacks_ += record.fallbacks;
  history_.push_back(record);
  ++resamplings_;
  points_drawn_ += points.size();
  last_resampling_time_ = now;
  return points;
}

breed_status breed_steering::status() const {
  breed_status s;
  s.r = proposal_share(settings_, resamplings_ + 1);
  s.resamplings = resamplings_;
  s.batches = batches_;
  s.points_drawn = points_drawn_;
  s.simulations_resampled = provenance_.size();
  s.last_resampling_time = last_resampling_time_;
  s.last_skip = last_skip_;
  s.shrinks = shrinks_;
  s.fallbacks = fallbacks_;
  s.completed = completed_.size();
  for (const auto& [sim, c] : completed_) s.population += fully_seen(sim, c) ? 1 : 0;
  return s;
}

std::string breed_random::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void breed_random::set_state(const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail()) throw std::runtime_error("not a std::mt19937_64 state");
  engine_ = engine;
}

std::string breed_steering::state_json() const {
  using nlohmann::json;
  // Sorted by key, so that equal states give equal text.
  std::vector<std::pair<std::uint64_t, step_deviation>> steps(steps_.begin(), steps_.end());
  std::sort(steps.begin(), steps.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json step_rows = json::array();
  for (const auto& [key, d] : steps)
    step_rows.push_back({key >> 32, key & 0xffffffffu, d.mean, d.count});
  std::map<std::uint32_t, sim_deviation> sims(sims_.begin(), sims_.end());
  json sim_rows = json::array();
  for (const auto& [sim, d] : sims) sim_rows.push_back({sim, d.sum_of_step_means, d.steps, d.last_update});
  std::map<std::uint32_t, completed_sim> completed(completed_.begin(), completed_.end());
  json completed_rows = json::array();
  for (const auto& [sim, c] : completed) completed_rows.push_back({sim, c.parameters, c.steps});
  json provenance = json::array();
  for (const auto& [sim, p] : provenance_)
    provenance.push_back({sim, static_cast<int>(p.origin), p.resampling, p.location});
  json history = json::array();
  for (const auto& h : history_)
    history.push_back({h.s, h.r, h.time, h.population, h.points, h.proposal, h.shrinks, h.fallbacks});
  return json{{"format", breed_state_format},
              {"parameters", settings_.bounds.size()},
              {"seed", settings_.seed},
              {"rng", rng_.state()},
              {"batches", batches_},
              {"resamplings", resamplings_},
              {"points_drawn", points_drawn_},
              {"update_counter", update_counter_},
              {"shrinks", shrinks_},
              {"fallbacks", fallbacks_},
              {"last_resampling_time", last_resampling_time_},
              {"last_skip", last_skip_},
              {"steps", std::move(step_rows)},
              {"sims", std::move(sim_rows)},
              {"completed", std::move(completed_rows)},
              {"provenance", std::move(provenance)},
              {"history", std::move(history)}}
      .dump();
}

void breed_steering::restore_state(const std::string& text) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("breed state: not JSON: ") + e.what());
  }
  const char* key = "format";
  try {
    if (!j.is_object()) throw std::runtime_error("breed state: not a JSON object");
    if (j.at("format").get<int>() != breed_state_format)
      throw std::runtime_error("breed state: format " + j.at("format").dump() + ", this build reads " +
                               std::to_string(breed_state_format));
    key = "parameters";
    if (j.at("parameters").get<std::size_t>() != settings_.bounds.size())
      throw std::runtime_error("breed state: " + j.at("parameters").dump() +
                               " parameters, the study has " +
                               std::to_string(settings_.bounds.size()));
    breed_steering next(settings_);  // built aside: *this changes only if all reads
    key = "rng";
    try {
      next.rng_.set_state(j.at("rng").get<std::string>());
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string("breed state: key 'rng': ") + e.what());
    }
    key = "batches";
    next.batches_ = j.at("batches").get<std::uint64_t>();
    key = "resamplings";
    next.resamplings_ = j.at("resamplings").get<std::uint64_t>();
    key = "points_drawn";
    next.points_drawn_ = j.at("points_drawn").get<std::uint64_t>();
    key = "update_counter";
    next.update_counter_ = j.at("update_counter").get<std::uint64_t>();
    key = "shrinks";
    next.shrinks_ = j.at("shrinks").get<std::uint64_t>();
    key = "fallbacks";
    next.fallbacks_ = j.at("fallbacks").get<std::uint64_t>();
    key = "last_resampling_time";
    next.last_resampling_time_ = j.at("last_resampling_time").get<double>();
    key = "last_skip";
    next.last_skip_ = j.at("last_skip").get<std::string>();
    key = "steps";
    for (const auto& row : j.at("steps")) {
      const auto sim = row.at(0).get<std::uint32_t>(), step = row.at(1).get<std::uint32_t>();
      next.steps_[(std::uint64_t{sim} << 32) | step] =
          step_deviation{row.at(2).get<double>(), row.at(3).get<std::uint64_t>()};
    }
    key = "sims";
    for (const auto& row : j.at("sims"))
      next.sims_[row.at(0).get<std::uint32_t>()] = sim_deviation{
          row.at(1).get<double>(), row.at(2).get<std::uint64_t>(), row.at(3).get<std::uint64_t>()};
    key = "completed";
    for (const auto& row : j.at("completed")) {
      auto parameters = row.at(1).get<std::vector<double>>();
      if (parameters.size() != settings_.bounds.size())
        throw std::runtime_error("breed state: completed simulation " + row.at(0).dump() + " has " +
                                 std::to_string(parameters.size()) + " parameters");
      next.completed_[row.at(0).get<std::uint32_t>()] =
          completed_sim{std::move(parameters), row.at(2).get<std::uint64_t>()};
    }
    key = "provenance";
    for (const auto& row : j.at("provenance")) {
      const int origin = row.at(1).get<int>();
      if (origin != 0 && origin != 1) throw std::runtime_error("breed state: provenance origin " + row.at(1).dump());
      next.provenance_[row.at(0).get<std::uint32_t>()] =
          provenance_entry{static_cast<point_origin>(origin), row.at(2).get<std::uint64_t>(),
                           row.at(3).get<std::int64_t>()};
    }
    key = "history";
    for (const auto& row : j.at("history")) {
      resampling_record h;
      h.s = row.at(0).get<std::uint64_t>();
      h.r = row.at(1).get<double>();
      h.time = row.at(2).get<double>();
      h.population = row.at(3).get<std::size_t>();
      h.points = row.at(4).get<std::size_t>();
      h.proposal = row.at(5).get<std::size_t>();
      h.shrinks = row.at(6).get<std::uint64_t>();
      h.fallbacks = row.at(7).get<std::uint64_t>();
      next.history_.push_back(h);
    }
    *this = std::move(next);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("breed state: key '") + key + "': " + e.what());
  }
}

}  // namespace melissa
