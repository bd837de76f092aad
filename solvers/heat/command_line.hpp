// Command line of melissa-heat, parsed apart from main() so tests can call it.
#pragma once

#include <string>
#include <vector>

#include "heat.hpp"

namespace melissa::heat {

enum class Mode { stream, compute, dataset };

struct CommandLine {
  Settings settings;
  Temperatures temperatures;
  Mode mode = Mode::stream;
  std::string output_dir;     // dataset mode
  int sim_id = -1;            // -1: from MELISSA_SIM_ID, else 0
  std::string checksum_file;  // empty: none
  std::string dump_file;      // empty: none; ".npy" suffix: npy, else raw float64
  bool help = false;
};

// Parses argv[1..]. Returns "" on success, else the message to print (then
// the usage, exit status 2).
std::string parse_command_line(const std::vector<std::string>& args, CommandLine* out);

std::string usage();

// Simulation id: the option, else MELISSA_SIM_ID, else 0. Returns false and a
// message if MELISSA_SIM_ID is not a non-negative integer.
bool resolve_sim_id(const CommandLine& cl, int* id, std::string* error);

}  // namespace melissa::heat
