#include "actors/steering/steering.hpp"

#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {

std::string steering_status_json(const breed_steering& breed) {
  const breed_status st = breed.status();
  const auto& s = breed.settings();
  nlohmann::json history = nlohmann::json::array();
  for (const auto& h : breed.history())
    history.push_back({{"s", h.s}, {"r", h.r}, {"time", h.time}, {"population", h.population},
                       {"points", h.points}, {"proposal", h.proposal}, {"shrinks", h.shrinks},
                       {"fallbacks", h.fallbacks}});
  nlohmann::json provenance = nlohmann::json::array();
  for (const auto& [sim, p] : breed.provenance()) {
    nlohmann::json row{{"sim", sim}, {"origin", to_string(p.origin)}, {"resampling", p.resampling}};
    if (p.location >= 0) row["location"] = p.location;
    provenance.push_back(std::move(row));
  }
  return nlohmann::json{
      {"kind", "breed"},
      {"period", s.period},
      {"window", s.window},
      {"r", st.r},  // proposal share of the next resampling
      {"r_start", s.r_start},
      {"r_end", s.r_end},
      {"r_steps", s.r_steps},
      {"batches", st.batches},
      {"resamplings", st.resamplings},
      {"simulations_resampled", st.simulations_resampled},
      {"points_drawn", st.points_drawn},
      {"last_resampling_time", st.last_resampling_time < 0 ? nlohmann::json(nullptr)
                                                          : nlohmann::json(st.last_resampling_time)},
      {"last_skip", st.last_skip},
      {"completed", st.completed},
      {"population_candidates", st.population},  // completed and every step seen by the trainer
      {"sigma", s.sigma},  // every draw starts from it (range units)
      {"shrinks", st.shrinks},
      {"fallbacks", st.fallbacks},
      {"resampling_history", std::move(history)},
      {"provenance", std::move(provenance)},
  }
      .dump();
}

namespace {

struct steering_state {
  std::shared_ptr<breed_box> box;
  std::shared_ptr<breed_steering> breed;  // box->breed: touched under box->mutex only
  steering_settings settings;
  simulation_owner_actor owner;  // rank 0's coordinator, once it introduced itself
  bool awaiting_view = false;  // request_submissions called, answer not yet here
  // Set by steering_fn: sends a resampling's changes to the owner.
  std::function<void(parameter_changes)> send_to_owner;

  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(box->mutex); }

  void resample(const submission_view& view) {
    awaiting_view = false;
    const double now = std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    auto held = lock();
    std::vector<resampled_point> points = breed->resample(view, now);
    if (points.empty()) {
      spdlog::info("steering: resampling skipped ({})", breed->status().last_skip);
      return;
    }
    parameter_changes changes;
    changes.reserve(points.size());
    std::size_t proposals = 0;
    for (auto& p : points) {
      proposals += p.origin == point_origin::proposal ? 1 : 0;
      changes.emplace_back(p.sim, std::move(p.parameters));
    }
    const resampling_record& h = breed->history().back();
    spdlog::info("steering: resampling s = {} (r = {:.3g}, population {}) changed simulations "
                 "{}..{} ({} proposal, {} uniform; {} shrinks, {} left at their location)",
                 h.s, h.r, h.population, changes.front().first, changes.back().first, proposals,
                 changes.size() - proposals, h.shrinks, h.fallbacks);
    held.unlock();
    if (owner) return send_to_owner(std::move(changes));
    try {
      settings.apply(std::move(changes));
    } catch (const std::exception& e) {
      spdlog::error("steering: applying new parameters failed: {}", e.what());
    }
  }
};

steering_actor::behavior_type steering_fn(steering_actor::stateful_pointer<steering_state> self,
                                          steering_settings settings) {
  // The Breed lives in the box (spawn_steering put it there), shared with
  // the checkpoints.
  self->state.box = settings.box;
  self->state.breed = settings.box->breed;
  self->state.settings = std::move(settings);
  // One message per resampling, whatever the number of pending simulations.
  self->state.send_to_owner = [self](parameter_changes changes) {
    std::vector<std::uint32_t> sims;
    std::vector<std::vector<double>> values;
    sims.reserve(changes.size());
    values.reserve(changes.size());
    for (auto& [sim, v] : changes) {
      sims.push_back(sim);
      values.push_back(std::move(v));
    }
    const std::size_t asked = sims.size();
    auto asked_sims = sims;
    self->request(self->state.owner, std::chrono::seconds(30), set_params_atom::value,
                  std::move(sims), std::move(values))
        .then(
            [self, asked, asked_sims](const std::vector<std::uint32_t>& changed) {
              // The others were submitted meanwhile (the owner logs them).
              if (changed.size() == asked) return;
              spdlog::info("steering: {} of {} new parameter sets applied", changed.size(), asked);
              const std::set<std::uint32_t> applied(changed.begin(), changed.end());
              auto held = self->state.lock();
              for (auto sim : asked_sims)
                if (!applied.count(sim)) self->state.breed->not_applied(sim);
            },
            [asked](const caf::error&) {
              spdlog::warn("steering: no answer about the new parameters of {} simulations", asked);
            });
  };
  return {
      [self](losses_atom, const std::vector<std::uint32_t>& sims,
             const std::vector<std::uint32_t>& steps, const std::vector<float>& losses, double mean,
             double stddev) {
        auto& st = self->state;
        bool due = false;
        try {
          auto held = st.lock();
          due = st.breed->record_batch(sims, steps, losses, mean, stddev);
        } catch (const std::exception& e) {  // mismatched lengths: drop the batch
          spdlog::error("steering: losses ignored: {}", e.what());
          return;
        }
        if (!due) return;
        if (st.settings.owned) {
          if (!st.owner) return spdlog::warn("steering: resampling skipped (no simulation table yet)");
          if (st.awaiting_view) return;
          st.awaiting_view = true;
          self->request(st.owner, std::chrono::seconds(10), submissions_atom::value)
              .then(
                  [self](std::uint32_t highest, std::uint32_t job_limit, std::uint32_t count) {
                    self->state.resample(submission_view{highest, job_limit, count});
                  },
                  [self](const caf::error& err) {
                    self->state.awaiting_view = false;
                    spdlog::error("steering: no submission view: {}", self->system().render(err));
                  });
        } else if (st.settings.submissions) {
          submission_view view;
          try {
            view = st.settings.submissions();
          } catch (const std::exception& e) {  // no view this period: try again next one
            spdlog::error("steering: no submission view: {}", e.what());
            return;
          }
          st.resample(view);
        } else if (st.settings.request_submissions && !st.awaiting_view) {
          st.awaiting_view = true;
          st.settings.request_submissions(caf::actor_cast<steering_actor>(self));
        }
      },
      [self](sim_done_atom, std::uint32_t sim, std::uint32_t steps) {
        auto& st = self->state;
        if (st.settings.owned) {
          if (!st.owner)
            return spdlog::error("steering: completion of simulation {} ignored: no simulation table yet", sim);
          self->request(st.owner, std::chrono::seconds(10), parameters_atom::value, sim)
              .then(
                  [self, sim, steps](const std::vector<double>& values) {
                    auto held = self->state.lock();
                    self->state.breed->sim_completed(sim, values, steps);
                  },
                  [self, sim](const caf::error& err) {
                    spdlog::error("steering: completion of simulation {} ignored: {}", sim,
                                  self->system().render(err));
                  });
          return;
        }
        try {
          auto values = st.settings.parameters_of(sim);
          auto held = st.lock();
          st.breed->sim_completed(sim, std::move(values), steps);
        } catch (const std::exception& e) {
          spdlog::error("steering: completion of simulation {} ignored: {}", sim, e.what());
        }
      },
      [self](resample_atom, std::uint32_t highest_submitted, std::uint32_t job_limit,
             std::uint32_t count) {
        self->state.resample(submission_view{highest_submitted, job_limit, count});
      },
      [self](steering_atom) {
        auto held = self->state.lock();
        return steering_status_json(*self->state.breed);
      },
      [self](owner_atom, simulation_owner_actor owner) {
        self->state.owner = std::move(owner);
        self->state.awaiting_view = false;
      },
  };
}

}  // namespace

steering_actor spawn_steering(caf::actor_system& sys, steering_settings settings) {
  if (!settings.owned && !settings.parameters_of)
    throw std::invalid_argument("steering: parameters_of is not set");
  if (!settings.owned && !settings.apply) throw std::invalid_argument("steering: apply is not set");
  // Built here so that bad settings (or a restored state that does not fit)
  // throw in the caller, not in the actor. A restarted actor (same box)
  // goes on with the Breed it had.
  if (!settings.box) settings.box = std::make_shared<breed_box>();
  {
    std::lock_guard<std::mutex> lock(settings.box->mutex);
    if (!settings.box->breed) {
      auto breed = std::make_shared<breed_steering>(settings.breed);
      if (!settings.restored_state.empty()) breed->restore_state(settings.restored_state);
      settings.box->breed = std::move(breed);
    }
  }
  return sys.spawn(steering_fn, std::move(settings));
}

}  // namespace melissa
