// A finished study as the monitor's source (melissa-run --monitor-only DIR):
// the answers the launcher gave, rebuilt from <DIR>/summary.json. Read-only:
// kill, pause, resume and set are refused. Plain C++ (no CAF).
#pragma once

#include <memory>
#include <string>

#include "actors/monitor/study_source.hpp"

namespace melissa::monitor {

// Throws std::runtime_error naming the file when summary.json is missing or
// is not a study summary.
std::shared_ptr<study_source> make_archive_source(const std::string& output_dir);

}  // namespace melissa::monitor
