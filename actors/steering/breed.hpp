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
//   2. AMIS resampling (eq. 9-12), one PMC iteration every `period` batches
//      (resampling s = 1, 2, ... at batch i = s * period). Population: the
//      last `window` simulations in order of Q updates among those that have
//      finished AND all of whose time steps the trainer has seen at least
//      once (the paper's Lambda_J^(i)); weights w = Q / mean(Q); the K pending
//      points' locations are a multinomial draw over the population with
//      those weights; each point is a Gaussian draw around its location.
//      Every draw starts from the configured sigma. A draw out of bounds
//      shrinks the width of that draw only (x0.3) and draws again, at most 5
//      times; then the location itself is used. Nothing of a shrink is
//      carried to other draws around the same location nor to later
//      resamplings (the paper: "the decreased sigma is passed to this
//      proposal member", a member being one draw's Gaussian q_k). Shrinks and
//      fallbacks to the location are counted per resampling and in total.
//   3. Exploration mixture r*q + (1-r)*U: each point comes from the proposal
//      with probability r, else it is a uniform point in the bounds.
//      r(s) = r_start + (r_end - r_start) * min(s, r_steps) / r_steps: the
//      first resampling (s = 1) already moves one step from r_start, and
//      resampling r_steps reaches r_end (r_start is r at s = 0, the uniform
//      design). The paper prints max(s (r_e - r_s) / r_c, r_e), which is r_e
//      at every s; the linear-then-constant rise it describes is the formula
//      above.
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
  // Width every proposal draw starts from, in units of each parameter's
  // range (hi - lo): the paper's sigma = 10 K on [100, 500] K is 0.025.
  double sigma = 0.025;
  // r: probability that a new point comes from the proposal (else uniform).
  double r_start = 0.5;
  double r_end = 0.9;
  std::uint32_t r_steps = 3;    // r_c: r reaches r_end at resampling s = r_steps
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
  std::uint64_t resampling = 0;  // s of that resampling (1 = the first)
  std::int64_t location = -1;    // the population member drawn around; -1 for uniform points
};

// What one resampling did (s = 1 for the first).
struct resampling_record {
  std::uint64_t s = 0;
  double r = 0;                    // the proposal share it used
  double time = 0;                 // seconds since the epoch
  std::size_t population = 0;      // members it drew locations from
  std::size_t points = 0;          // pending simulations it gave new parameters
  std::size_t proposal = 0;        // of which drawn around a member (fallbacks included)
  std::uint64_t shrinks = 0;       // out-of-bounds draws that shrank a draw's width
  std::uint64_t fallbacks = 0;     // proposal points left at their location (6 draws out)
};

struct breed_status {
  double r = 0;                   // the proposal share the next resampling uses
  std::uint64_t resamplings = 0;  // resamplings done
  std::uint64_t batches = 0;      // batches recorded
  std::uint64_t points_drawn = 0;           // points returned by every resampling together
  std::uint64_t simulations_resampled = 0;  // distinct simulations whose parameters were replaced
  double last_resampling_time = -1;         // seconds since the epoch; -1: none yet
  std::string last_skip;          // why the latest resampling call changed nothing ("" if it did)
  std::uint64_t shrinks = 0;      // over every resampling (resampling_record)
  std::uint64_t fallbacks = 0;
  std::size_t completed = 0;      // completed simulations reported
  std::size_t population = 0;     // of which fully seen by the trainer (population candidates)
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
  // The engine's state as text (the standard's operator<< form), and back;
  // set_state throws std::runtime_error for text that is not one.
  std::string state() const;
  void set_state(const std::string& text);

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

// One proposal draw around `location`: x = location + width * range * z,
// starting from width = sigma. Out of bounds: width *= sigma_shrink for this
// draw's next try, at most max_retries times; still out: the location itself.
// The caller's sigma is not touched: the next draw starts from it again.
struct proposal_draw {
  std::vector<double> point;
  std::uint32_t draws = 0;       // 1 + shrinks
  std::uint32_t shrinks = 0;     // out-of-bounds tries that shrank the width
  double width = 0;              // the width of the last try
  bool kept_location = false;    // every try was out of bounds
};
inline constexpr double sigma_shrink = 0.3;
inline constexpr std::uint32_t max_retries = 5;
proposal_draw draw_around(const std::vector<double>& location, double sigma,
                          const std::vector<config::parameter_bounds>& bounds, breed_random& rng);

// r at resampling s (1 = the first): r_start + (r_end - r_start) *
// min(s, r_steps) / r_steps; s = 0 gives r_start, r_steps = 0 gives r_end.
double proposal_share(const breed_settings& s, std::uint64_t resampling);

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

  // Simulation `sim` has completed with these parameters, and the training
  // buffer received `steps` distinct time steps of it: it joins the
  // population once the trainer has seen (a loss of) that many of its steps.
  // Throws std::invalid_argument when the parameter count differs from bounds.
  void sim_completed(std::uint32_t sim, std::vector<double> parameters, std::uint64_t steps);

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
  std::uint64_t batches() const { return batches_; }  // batches recorded
  const std::vector<resampling_record>& history() const { return history_; }
  const std::map<std::uint32_t, provenance_entry>& provenance() const { return provenance_; }
  // The launcher kept the old parameters of `sim` (it was submitted before
  // the new ones arrived): it no longer counts as resampled, so that the
  // provenance never claims parameters a simulation did not run.
  void not_applied(std::uint32_t sim) { provenance_.erase(sim); }
  const breed_settings& settings() const { return settings_; }

  // Everything a checkpoint needs to go on as if uninterrupted (JSON text):
  // the per-step deviation means and counts, the per-simulation sums, the
  // completed simulations, the provenance, the resampling history and
  // counters, and the generator's state (std::mt19937_64's text form, which
  // the standard fixes). Doubles round-trip exactly. The settings are not
  // restored (the study file gives them); only the parameter count is checked.
  std::string state_json() const;
  // Replaces this object's state by one state_json() wrote. Throws
  // std::runtime_error naming the key when the text does not fit (another
  // format, a missing key, another parameter count); the object is then
  // unchanged.
  void restore_state(const std::string& json);

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
  struct completed_sim {
    std::vector<double> parameters;
    std::uint64_t steps = 0;  // distinct steps the buffer received
  };
  std::unordered_map<std::uint32_t, completed_sim> completed_;
  // Completed, and every step the buffer received has a loss recorded.
  bool fully_seen(std::uint32_t sim, const completed_sim& c) const;
  std::map<std::uint32_t, provenance_entry> provenance_;
  std::vector<resampling_record> history_;
  std::uint64_t shrinks_ = 0;
  std::uint64_t fallbacks_ = 0;
  std::uint64_t update_counter_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t resamplings_ = 0;
  std::uint64_t points_drawn_ = 0;
  double last_resampling_time_ = -1;
  std::string last_skip_;
};

}  // namespace melissa
