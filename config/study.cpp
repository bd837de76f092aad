// Study file parser: TOML++ is used in config/ and nowhere else.
//
// The parser is split along its seams, all behind config/study.hpp:
//   study.cpp           config_error, duration_seconds, to_string, and
//                       parse_study / load_study: the sections in file order
//   study_reader.hpp/.cpp  the TOML reader (table_reader) and value conversions
//   study_sections.cpp  one read_* function per [section], with its checks
//   study_checks.cpp    the checks between sections
//   study_toml.cpp      to_toml
//   study_equality.cpp  operator== of every section
// Adding a section is one struct (study.hpp), one read_* function, one
// write_* function, one operator== and one line in each of parse_study / to_toml.
#include "config/study.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "config/study_sections.hpp"

namespace melissa::config {
namespace {

std::string format_what(const std::string& source, std::uint32_t line, std::uint32_t column,
                        const std::string& key, const std::string& reason) {
  std::string out = source;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + reason;
}

}  // namespace

config_error::config_error(std::string source_name, std::uint32_t at_line,
                           std::uint32_t at_column, std::string dotted_key,
                           std::string why)
    : std::runtime_error(format_what(source_name, at_line, at_column, dotted_key, why)),
      source(std::move(source_name)),
      line(at_line),
      column(at_column),
      key(std::move(dotted_key)),
      reason(std::move(why)) {}

config_error::config_error(std::string source_name, std::string why)
    : config_error(std::move(source_name), 0, 0, std::string(), std::move(why)) {}

using namespace detail;

// ---------------------------------------------------------------------------

std::int64_t duration_seconds(std::string_view text) {
  // [D-]H:MM:SS: days and hours any number of digits, minutes and seconds two.
  auto digits = [](std::string_view s, std::int64_t& out) {
    if (s.empty() || s.size() > 9) return false;
    out = 0;
    for (const char c : s) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  };
  std::int64_t days = 0, hours = 0, minutes = 0, seconds = 0;
  if (const auto dash = text.find('-'); dash != std::string_view::npos) {
    if (!digits(text.substr(0, dash), days)) return -1;
    text.remove_prefix(dash + 1);
  }
  const auto c1 = text.find(':');
  const auto c2 = c1 == std::string_view::npos ? c1 : text.find(':', c1 + 1);
  if (c2 == std::string_view::npos || text.size() - c2 != 3 || c2 - c1 != 3) return -1;
  if (!digits(text.substr(0, c1), hours) || !digits(text.substr(c1 + 1, 2), minutes) ||
      !digits(text.substr(c2 + 1), seconds) || minutes > 59 || seconds > 59)
    return -1;
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
}

const char* to_string(study_mode m) { return name_of(m, study_modes); }
const char* to_string(launcher_backend b) { return name_of(b, backends); }
const char* to_string(sink_kind s) { return name_of(s, sinks); }
const char* to_string(buffer_policy p) { return name_of(p, buffer_policies); }
const char* to_string(output_scaling o) { return name_of(o, output_scalings); }
const char* to_string(sampler_kind s) { return name_of(s, samplers); }

study_config parse_study(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    throw config_error(source_name, line_of(e.source()), column_of(e.source()), std::string(),
                       "TOML syntax error: " + std::string(e.description()));
  }
  table_reader file(source_name, &root, std::string(), root.source());
  study_config c;
  c.study = read_study(file.table("study", true));
  c.launcher = read_launcher(file.table("launcher", false));
  c.server = read_server(file.table("server", false), c.study);
  c.client = read_client(file.table("client", true), c.server.sink);
  c.parameters = read_parameters(file.table("parameters", true));
  c.fields = read_fields(file, c);
  check_train_sections(file, c);
  c.buffer = read_buffer(file.table("buffer", false));
  c.training = read_training(file.table("training", false), c.fields, c.buffer);
  if (file.find("breed")) c.breed = read_breed(file.table("breed", false), c);
  c.checkpoint = read_checkpoint(file.table("checkpoint", false), c.study);
  check_statistics_mode(file, c);
  if (c.study.mode == study_mode::statistics)
    c.statistics = read_statistics(file.table("statistics", false), c);
  file.finish();
  return c;
}

std::uint32_t group_size(const study_config& c) {
  return c.study.mode == study_mode::statistics && c.statistics.sobol
             ? static_cast<std::uint32_t>(c.parameters.names.size() + 2)
             : 1;
}

std::uint64_t simulation_count(const study_config& c) { return c.parameters.count * group_size(c); }

study_config load_study(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path, std::string("cannot read the study file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw config_error(path, std::string("cannot read the study file: ") + std::strerror(errno));
  return parse_study(text.str(), path);
}

}  // namespace melissa::config
