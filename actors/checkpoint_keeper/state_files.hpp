// The small parts of a checkpoint, as JSON: a rank's received-steps log
// (rank-<R>/received_steps.json: per simulation and field the bitset of
// stored steps, or for a compacted complete simulation its series record,
// the attempts seen, done) and rank 0's simulation table
// (study/simulation_table.json: parameters, states, Breed's change counts).
// Plain C++ (nlohmann-json), no CAF. Doubles round-trip exactly.
#pragma once

#include <string>

#include "actors/aggregator/step_log.hpp"
#include "actors/coordinator/simulation_table.hpp"

namespace melissa::checkpoint {

std::string step_log_to_json(const step_log& log);
// Throws std::runtime_error saying what is wrong.
step_log step_log_from_json(const std::string& text);

std::string simulation_table_to_json(const simulation_table_snapshot& table);
// Throws std::runtime_error saying what is wrong (lengths, unknown state).
simulation_table_snapshot simulation_table_from_json(const std::string& text);

}  // namespace melissa::checkpoint
