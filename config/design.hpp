// Design of experiments: which parameter values each simulation gets.
//
// Pure functions of (parameters section, seed): the study coordinator draws
// the design once, and a restarted study draws the very same one.
#pragma once

#include <cstdint>
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

// The design that parameters.sampler names.
design_matrix make_design(const parameters_config& parameters, std::uint64_t seed);

}  // namespace melissa::config
