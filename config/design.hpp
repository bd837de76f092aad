// Design of experiments: which parameter values each simulation gets.
//
// Pure functions of (parameters section, seed): the study coordinator draws
// the design once, and a restarted study draws the very same one.
//
// Samplers (parameters.sampler):
//   uniform         Monte Carlo: independent uniform draws (mt19937_64).
//   lhs             Latin hypercube: in every dimension, exactly one point in
//                   each of the n equal strata (random permutation + jitter).
//   halton          GSL's gsl_qrng_halton (radical inverse in the primes 2, 3, 5, ...).
//   reverse-halton  GSL's gsl_qrng_reversehalton (digits d -> b - d, Vandewoestyne & Cools).
//   sobol           GSL's gsl_qrng_sobol (Bratley & Fox direction numbers).
// The quasi-random ones are deterministic; with scramble they get a
// Cranley-Patterson random shift (x + s mod 1, one s per dimension, drawn
// from mt19937_64 seeded with the seed), so another seed gives another design
// that keeps the low discrepancy.
//
// Prefixes: uniform, halton, reverse-halton and sobol designs of n points are
// the first n rows of any longer design (more simulations extend a study);
// an lhs design depends on n as a whole.
//
// GSL is an implementation detail of design.cpp; this header does not include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <optional>
#include <vector>

#include "config/study.hpp"

namespace melissa::config {

// Row i holds the parameter values of simulation i, in the order of
// parameters.names; there are parameters.count rows.
using design_matrix = std::vector<std::vector<double>>;

// Independent uniform draws, value j of every row in [bounds[j].lo, bounds[j].hi).
// The generator is std::mt19937_64 seeded with `seed`, drawn row by row, and
// the mapping to [lo, hi) is written out here (not std::uniform_real_distribution,
// whose output differs between standard libraries), so a design is the same
// whichever compiler built the server.
design_matrix uniform_design(const parameters_config& parameters, std::uint64_t seed);

// n points of `sampler` in the box `bounds` (value j of every row in
// [bounds[j].lo, bounds[j].hi)), independently of any study's sampler: e.g.
// uniform points to explore, or a fixed Halton validation set.
// draw_design(uniform, bounds, n, seed, _) equals uniform_design for those
// bounds. `scramble` shifts the quasi-random samplers and is ignored by
// uniform and lhs. Throws std::invalid_argument when bounds.size() exceeds
// max_parameters(sampler) or n exceeds max_count(sampler) (study.hpp).
design_matrix draw_design(sampler_kind sampler, const std::vector<parameter_bounds>& bounds,
                          std::size_t n, std::uint64_t seed, bool scramble = false);

// The same in the unit cube [0, 1)^dimensions (tests, discrepancy).
design_matrix unit_design(sampler_kind sampler, std::size_t dimensions, std::size_t n,
                          std::uint64_t seed, bool scramble = false);

// The design that parameters.sampler names:
// draw_design(sampler, bounds, count, seed, scramble).
design_matrix make_design(const parameters_config& parameters, std::uint64_t seed);

// The study's simulations: make_design, or with statistics.sobol the
// pick-freeze design: parameters.count groups of p + 2 rows (p parameters),
// group g being simulations g (p + 2) .. g (p + 2) + p + 1 in the order
//   A, B, C_1 .. C_p     (C_k: A with its column k taken from B),
// where (A, B) is row g of one draw of 2p dimensions of parameters.sampler
// (A the first p values, B the last p), in the bounds of each parameter.
// Rows: simulation_count(study).
design_matrix make_study_design(const study_config& study);

// Which pick-freeze group and member a simulation is (member 0 = A, 1 = B,
// 2 + k = C_k); with group size 1, the group is the simulation and member 0.
struct group_member {
  std::uint64_t group = 0;
  std::uint32_t member = 0;
};
inline group_member member_of(std::uint64_t sim, std::uint32_t group_size) {
  return {sim / group_size, static_cast<std::uint32_t>(sim % group_size)};
}

// A simulation's parameters as the launcher puts them on its command line
// ("312.5,104.2,..."): shortest text that reads back to the same doubles.
std::string format_parameters(const std::vector<double>& values);
// The inverse, for text that crossed a process boundary: "a,b,c" of finite
// numbers, nothing else (no spaces, options, or NaN); nullopt, with `error`
// set, otherwise.
std::optional<std::vector<double>> parse_parameters(const std::string& text, std::string* error);

}  // namespace melissa::config
