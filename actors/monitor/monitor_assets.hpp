// The dashboard's files (actors/monitor/web/ and Debian's Chart.js), built
// into the program by embed_assets.py: name -> file, served at / and /static/.
#pragma once

#include <map>
#include <string>

#include "actors/monitor/monitor_api.hpp"

namespace melissa::monitor {

std::map<std::string, static_asset> dashboard_assets();

}  // namespace melissa::monitor
