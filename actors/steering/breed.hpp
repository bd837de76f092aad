// Breed (Dymchenko, Purandare, Raffin, SC24 AI4S'24, section 3): active
// learning that moves the parameters of simulations not yet submitted toward
// the regions of the parameter space where the surrogate learns worst.
//
// Pure logic (no CAF), driven by the steering actor:
//   1. Loss deviation (eq. 4-6). For every sample of a training batch,
//      delta = max(l - mu, 0) / sigma with the batch's loss mean mu and
//      standard deviation sigma (sigma = 0: delta = 0). Deviations, unlike raw
//      losses, compare across network states. delta is averaged over every
//      batch that held the sample (a running mean per (sim, step)), and
//      Q_sim = mean over its steps of those averages. Nothing but the running
//      means, counts and per-simulation sums is stored.
//   2. AMIS resampling (eq. 9-12), one PMC iteration every `period` batches.
//      Population: the last `window` completed simulations in order of Q
//      updates; weights w = Q / mean(Q); the K pending points' locations are a
//      multinomial draw over the population with those weights; each point is
//      a Gaussian draw around its location with the member's sigma. A draw
//      out of bounds shrinks that member's sigma (x0.3, kept for later
//      resamplings) and draws again, at most 5 times; then the location
//      itself is used.
//   3. Exploration mixture r*q + (1-r)*U: each point comes from the proposal
//      with probability r, else it is a uniform point in the bounds. r moves
//      linearly from r_start (first resampling) to r_end (resampling r_steps
//      and later).
//
// About r: the paper's text says "substituted with uniform points with
// probability r", but its mixture r*q + (1-r)*U, Figure 1 (30 % uniform)
// and Table 1 (r rising 0.5 -> 0.9, up to 1.0: "concentrate" over time) all
// make r the proposal's share. This class follows the mixture: r is the
// probability that a point comes from the proposal.
//
// Randomness: one std::mt19937_64 seeded with settings.seed, with the
// mappings to [0, 1) and to N(0, 1) (Box-Muller) written out, so that a seed
// gives the same points whichever standard library built the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/study.hpp"

namespace melissa {

struct breed_settings {
  std::uint32_t period = 200;   // P: training batches between two resamplings (>= 1)
  std::size_t window = 200;     // N: population size (most recently updated completed simulations)
  // Initial proposal width of each population member, in units of each
  // parameter's range (hi - lo): the paper's sigma = 10 K on [100, 500] K is 0.025.
  double sigma = 0.025;
  // r: probability that a new point comes from the proposal (else uniform).
  double r_start = 0.5;
  double r_end = 0.9;
  std::uint32_t r_steps = 3;    // resamplings for r to go from r_start to r_end
  std::uint64_t seed = 0;
  std::vector<config::parameter_bounds> bounds;  // one per parameter, lo < hi
};

// The launcher's submissions as the resampling sees them (section 3.3).
struct submission_view {
  std::uint32_t highest_submitted = 0;  // k: the highest simulation id submitted so far
  std::uint32_t job_limit = 0;          // m: jobs the launcher runs at once
  std::uint32_t count = 0;              // simulations in the study (ids 0 .. count-1)
  // k + m: the first id whose parameters may change. k+1 .. k+m-1 may be
  // submitted at any moment, so they are left alone.
  std::uint64_t first_changeable() const {
    return std::uint64_t{highest_submitted} + job_limit;
  }
};

enum class point_origin : std::uint8_t { proposal = 0, uniform = 1 };
const char* to_string(point_origin o);

struct resampled_point {
  std::uint32_t sim = 0;
  std::vector<double> parameters;
  point_origin origin = point_origin::uniform;
};

// Where a simulation's current parameters came from (the latest resampling
// that changed it; a pending simulation may be changed many times).
struct provenance_entry {
  point_origin origin = point_origin::uniform;
  std::uint64_t resampling = 0;  // index of that resampling (0 = the first)
  std::int64_t location = -1;    // the population member drawn around; -1 for uniform points
};

struct breed_status {
  double r = 0;                   // the proposal share the next resampling uses
  std::uint64_t resamplings = 0;  // resamplings done
  std::uint64_t batches = 0;      // batches recorded
  std::uint64_t points_drawn = 0;           // points returned by every resampling together
  std::uint64_t simulations_resampled = 0;  // distinct simulations whose parameters were replaced
  double last_resampling_time = -1;         // seconds since the epoch; -1: none yet
  std::string last_skip;          // why the latest resampling call changed nothing ("" if it did)
  // The population of the latest resampling, member by member (sim, sigma in range units).
  std::vector<std::pair<std::uint32_t, double>> member_sigma;
  std::size_t completed = 0;      // completed simulations reported
};

// The generator and the two mappings written out (not std:: distributions,
// whose outputs differ between standard libraries).
class breed_random {
 public:
  explicit breed_random(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t next() { return engine_(); }
  // [0, 1): the top 53 bits.
  double uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // N(0, 1) by Box-Muller, one value per call (two uniforms each).
  double normal();

 private:
  std::mt19937_64 engine_;
};

// w_j = Q_j / mean(Q): mean 1. All Q zero (or an empty input): every weight 1,
// since nothing tells the members apart.
std::vector<double> importance_weights(const std::vector<double>& q);

// `draws` indices in [0, weights.size()), index j with probability
// weights[j] / sum(weights) (inverse of the cumulative sum). Empty weights:
// no draws.
std::vector<std::size_t> multinomial_draw(const std::vector<double>& weights, std::size_t draws,
                                          breed_random& rng);

// One proposal draw around `location`: x = location + sigma * range * z. Out
// of bounds: sigma *= sigma_shrink, draw again, at most max_retries times;
// still out: the location itself. `sigma` is updated in place (the member
// keeps its shrunk width).
struct proposal_draw {
  std::vector<double> point;
  std::uint32_t draws = 0;       // 1 + retries
  bool kept_location = false;    // every draw was out of bounds
};
inline constexpr double sigma_shrink = 0.3;
inline constexpr std::uint32_t max_retries = 5;
proposal_draw draw_around(const std::vector<double>& location, double& sigma,
                          const std::vector<config::parameter_bounds>& bounds, breed_random& rng);

// r at resampling `index` (0 = the first): linear from r_start to r_end over
// r_steps resamplings, then r_end. r_steps = 0: r_end from the start.
double proposal_share(const breed_settings& s, std::uint64_t index);

class breed_steering {
 public:
  // Throws std::invalid_argument: no bounds, lo >= hi, period 0, window 0,
  // sigma <= 0, r outside [0, 1].
  explicit breed_steering(breed_settings settings);

  // One training batch: sims[i], steps[i], losses[i] for each sample; the
  // batch's loss mean and standard deviation. Non-finite losses are skipped
  // (and a batch with a non-finite mean or sigma entirely). Throws
  // std::invalid_argument when the three vectors differ in length.
  // Returns true when this batch completes a period: time to resample.
  bool record_batch(const std::vector<std::uint32_t>& sims, const std::vector<std::uint32_t>& steps,
                    const std::vector<float>& losses, double mean, double stddev);

  // Simulation `sim` has completed with these parameters: it may join the population.
  // Throws std::invalid_argument when the parameter count differs from bounds.
  void sim_completed(std::uint32_t sim, std::vector<double> parameters);

  // New parameters for ids first_changeable() .. count-1 (ascending). Changes
  // nothing (and counts no resampling; status().last_skip says why) when no
  // id is pending past k + m or no completed simulation has a Q yet.
  // `now` (seconds since the epoch) is recorded as the last resampling time.
  std::vector<resampled_point> resample(const submission_view& view, double now);

  // Q of `sim` (mean over its steps of the averaged deviations); -1 if no loss seen.
  double q_of(std::uint32_t sim) const;
  // Averaged deviation of (sim, step) and the batches that held it; {-1, 0} if unseen.
  std::pair<double, std::uint64_t> deviation_of(std::uint32_t sim, std::uint32_t step) const;
  // The population the next resampling would use, most recently updated first.
  std::vector<std::uint32_t> population() const;

  breed_status status() const;
  const std::map<std::uint32_t, provenance_entry>& provenance() const { return provenance_; }
  const breed_settings& settings() const { return settings_; }

 private:
  struct step_deviation {
    double mean = 0;          // running mean of delta over the batches that held the sample
    std::uint64_t count = 0;
  };
  struct sim_deviation {
    double sum_of_step_means = 0;  // Q = sum_of_step_means / steps
    std::uint64_t steps = 0;
    std::uint64_t last_update = 0; // order of Q updates (a sample counter, unique)
  };

  breed_settings settings_;
  breed_random rng_;
  std::unordered_map<std::uint64_t, step_deviation> steps_;  // key: sim << 32 | step
  std::unordered_map<std::uint32_t, sim_deviation> sims_;
  std::unordered_map<std::uint32_t, std::vector<double>> completed_;
  std::unordered_map<std::uint32_t, double> member_sigma_;  // members' current widths
  std::vector<std::pair<std::uint32_t, double>> last_population_sigma_;
  std::map<std::uint32_t, provenance_entry> provenance_;
  std::uint64_t update_counter_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t resamplings_ = 0;
  std::uint64_t points_drawn_ = 0;
  double last_resampling_time_ = -1;
  std::string last_skip_;
};

}  // namespace melissa
