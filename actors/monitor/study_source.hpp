// Where the monitor's figures come from. Every answer is the launcher's JSON
// text, as melissa-shell gets it (docs/shell.md, "Answers"): {"ok": true, ...}
// or {"ok": false, "error": "..."}. Two sources:
//   live_source     the running launcher, asked through CAF (the same
//                   messages, hence the same launcher code, as melissa-shell's)
//   archive_source  a finished study: summary.json, read-only
#pragma once

#include <cstdint>
#include <string>

namespace melissa::monitor {

class study_source {
 public:
  virtual ~study_source() = default;
  // false for a finished study: commands are refused (409).
  virtual bool live() const = 0;
  virtual std::string status() = 0;
  virtual std::string jobs(const std::string& state_filter) = 0;  // "" = every job
  virtual std::string job(std::uint32_t id) = 0;
  virtual std::string kill(std::uint32_t id) = 0;
  virtual std::string pause() = 0;
  virtual std::string resume() = 0;
  virtual std::string set(const std::string& key, const std::string& value) = 0;
  virtual std::string training() = 0;  // melissa-shell `train`
  virtual std::string buffer() = 0;    // melissa-shell `buffer`
  virtual std::string steering() = 0;  // melissa-shell `steering`
};

}  // namespace melissa::monitor
