// Study file parser: TOML++ is used here and nowhere else.
//
// Structure: a small `table_reader` wraps one TOML table. Each accessor reads a
// key with its type, range and default, and records the key as known; finish()
// then rejects every key nobody asked for, so the accepted keys are exactly the
// ones the read_* functions read and no separate list can drift out of date.
// Adding a section is one struct (study.hpp), one read_* function, one
// write_* function and one line in each of parse_study / to_toml.
#include "config/study.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include <toml++/toml.h>

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

namespace {

// ---------------------------------------------------------------------------
// Names of enum values, shared by the parser and by to_string / to_toml.

template <class E>
using enum_names = std::pair<const char*, E>;

constexpr enum_names<study_mode> study_modes[] = {
    {"training", study_mode::training}, {"statistics", study_mode::statistics}};
constexpr enum_names<launcher_backend> backends[] = {{"local", launcher_backend::local},
                                                     {"slurm", launcher_backend::slurm},
                                                     {"oar", launcher_backend::oar}};
constexpr enum_names<sink_kind> sinks[] = {{"count", sink_kind::count},
                                           {"dataset", sink_kind::dataset},
                                           {"train", sink_kind::train}};
constexpr enum_names<buffer_policy> buffer_policies[] = {{"fifo", buffer_policy::fifo},
                                                         {"firo", buffer_policy::firo},
                                                         {"reservoir", buffer_policy::reservoir}};
constexpr enum_names<output_scaling> output_scalings[] = {{"running", output_scaling::running},
                                                          {"constant", output_scaling::constant}};
constexpr enum_names<sampler_kind> samplers[] = {{"uniform", sampler_kind::uniform},
                                                 {"lhs", sampler_kind::lhs},
                                                 {"halton", sampler_kind::halton},
                                                 {"reverse-halton", sampler_kind::reverse_halton},
                                                 {"sobol", sampler_kind::sobol}};

template <class E, std::size_t N>
const char* name_of(E value, const enum_names<E> (&names)[N]) {
  for (const auto& [name, v] : names)
    if (v == value) return name;
  return "?";
}

// ---------------------------------------------------------------------------
// Message helpers.

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t uint32_max = std::numeric_limits<std::uint32_t>::max();

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// A string as a TOML basic string: quoted, with the characters TOML requires
// escaped. Used both in messages and by to_toml, so what the user reads in an
// error is valid TOML too.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Shortest text that reads back to the same double, always with a '.' or an
// exponent so that TOML sees a float.
std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string out(buf, res.ptr);
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

// "1.5 KB", "1.4 TB": decimal units, for messages.
std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  std::size_t u = 0;
  while (bytes >= 1000 && u + 1 < std::size(units)) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, bytes < 10 && u > 0 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

// "1 pair", "3 pairs".
std::string count_of(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// Close enough to be a typo: a couple of edits, and fewer edits than the word has letters.
bool looks_like_typo(std::string_view written, std::string_view meant) {
  const auto d = edit_distance(written, meant);
  return d > 0 && d <= 2 && d < meant.size();
}

// Names end up in paths, CSV headers and key=value protocol lines.
std::string check_name(const std::string& s) {
  const bool ok = !s.empty() && s != "." && s != ".." &&
                  std::all_of(s.begin(), s.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                           c == '-';
                  });
  return ok ? std::string() : "must match [A-Za-z0-9_.-]+ (and not be . or ..), got " + quoted(s);
}

std::string check_not_empty(const std::string& s) {
  return s.empty() ? "must not be empty" : std::string();
}

std::string check_host(const std::string& s) {
  if (s.empty()) return "must not be empty";
  const bool ok = std::none_of(s.begin(), s.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
  });
  return ok ? std::string() : "must be a host name or an IP address, got " + quoted(s);
}

std::string check_env_name(const std::string& s) {
  const bool ok = !s.empty() && !std::isdigit(static_cast<unsigned char>(s[0])) &&
                  std::all_of(s.begin(), s.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                  });
  return ok ? std::string() : "not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)";
}

// Scheduler words (partition, account, gres) reach sbatch / oarsub as one
// argument each: no blanks, no control characters. Empty means "not set".
std::string check_word(const std::string& s) {
  const bool ok = std::none_of(s.begin(), s.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
  });
  return ok ? std::string() : "must not contain spaces or control characters, got " + quoted(s);
}

// An extra scheduler option: one argument, so it cannot be empty.
std::string check_option(const std::string& s) {
  return s.empty() ? "must not be empty (each element is one option, e.g. \"--qos=fast\")"
                   : std::string();
}

std::string duration_form_error(const std::string& s) {
  return "must be a duration \"H:MM:SS\" or \"D-H:MM:SS\", got " + quoted(s);
}

// Time limits: empty means the scheduler's default; zero is refused (Slurm
// reads it as "no limit", OAR as nothing at all).
std::string check_time_limit(const std::string& s) {
  return s.empty() || duration_seconds(s) > 0 ? std::string()
                                              : duration_form_error(s) + " (and > 0)";
}

std::string check_duration(const std::string& s) {
  return duration_seconds(s) > 0 ? std::string() : duration_form_error(s) + " (and > 0)";
}

// A string check returns why the value is invalid, or "" when it is fine.
using string_check = std::function<std::string(const std::string&)>;

// Integer range; an absent `hi` means "as large as the field's type allows".
struct int_range {
  std::int64_t lo;
  std::optional<std::int64_t> hi;
};

std::uint32_t line_of(const toml::source_region& r) { return r.begin.line ? r.begin.line : 1; }
std::uint32_t column_of(const toml::source_region& r) { return r.begin.line ? r.begin.column : 1; }

// ---------------------------------------------------------------------------
// One table of the study file (see the comment at the top of the file).

class table_reader {
 public:
  // `path` is the dotted path of this table ("" for the root, "server",
  // "fields[1]"); `where` is what errors about missing keys point at.
  table_reader(const std::string& source, const toml::table* table, std::string path,
               toml::source_region where)
      : source_(&source), table_(table), path_(std::move(path)), where_(std::move(where)) {}

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  [[noreturn]] void fail(const toml::source_region& at, const std::string& key,
                         std::string reason) const {
    throw config_error(*source_, line_of(at), column_of(at), key, std::move(reason));
  }
  [[noreturn]] void fail(const toml::node& at, const std::string& key, std::string reason) const {
    fail(at.source(), key, std::move(reason));
  }
  // An error about `key` of this table: at its value when it is there, else at the table.
  [[noreturn]] void fail_key(std::string_view key, std::string reason) const {
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    fail(n ? n->source() : where_, key_path(key), std::move(reason));
  }

  std::uint32_t line_of_key(std::string_view key) const {
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    return line_of(n ? n->source() : where_);
  }

  // The node under `key`, or nullptr; either way `key` is now a known key.
  const toml::node* find(std::string_view key) {
    known_.emplace_back(key);
    return table_ ? table_->get(key) : nullptr;
  }

  const toml::node& require(std::string_view key, std::string_view what = "key") {
    if (const toml::node* n = find(key)) return *n;
    std::string reason = "missing required " + std::string(what);
    // A misspelt required key would otherwise only surface as "unknown key"
    // once the missing one is added; say both at once.
    if (const toml::key* typo = unknown_key_near(key))
      reason += " (is " + quoted(typo->str()) + " on line " +
                std::to_string(line_of(typo->source())) + " a misspelling?)";
    fail(where_, key_path(key), std::move(reason));
  }

  // ---- typed values of a node --------------------------------------------

  std::string as_string(const toml::node& n, const std::string& key,
                        const string_check& check = {}) const {
    const auto* s = n.as_string();
    if (!s) fail(n, key, std::string("expected a string, got ") + type_name(n));
    const std::string& v = s->get();
    // argv, environment and paths cannot carry NUL bytes.
    if (v.find('\0') != std::string::npos) fail(n, key, "must not contain a NUL character");
    if (check) {
      if (auto why = check(v); !why.empty()) fail(n, key, std::move(why));
    }
    return v;
  }

  template <class Int>
  Int as_integer(const toml::node& n, const std::string& key, int_range range) const {
    const auto* i = n.as_integer();
    if (!i) fail(n, key, std::string("expected an integer, got ") + type_name(n));
    const std::int64_t v = i->get();
    const std::int64_t type_max =
        static_cast<std::int64_t>(std::min<std::uint64_t>(std::numeric_limits<Int>::max(), int64_max));
    const std::int64_t hi = std::min(range.hi.value_or(type_max), type_max);
    if (v < range.lo || v > hi) {
      std::string why;
      if (range.hi)
        why = "must be in [" + std::to_string(range.lo) + ", " + std::to_string(hi) + "]";
      else if (v < range.lo)
        why = "must be >= " + std::to_string(range.lo);
      else
        why = "must be <= " + std::to_string(hi);
      fail(n, key, why + ", got " + std::to_string(v));
    }
    return static_cast<Int>(v);
  }

  // Integers are fine where a float is expected; floats where an integer is expected are not.
  double as_number(const toml::node& n, const std::string& key) const {
    if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
    const auto* f = n.as_floating_point();
    if (!f) fail(n, key, std::string("expected a number, got ") + type_name(n));
    if (!std::isfinite(f->get()))
      fail(n, key, "must be a finite number, got " + format_number(f->get()));
    return f->get();
  }

  const toml::array& as_array(const toml::node& n, const std::string& key) const {
    const auto* a = n.as_array();
    if (!a) fail(n, key, std::string("expected an array, got ") + type_name(n));
    return *a;
  }

  // ---- keys of this table ------------------------------------------------

  std::string string(std::string_view key, const std::string& fallback,
                     const string_check& check = {}) {
    const toml::node* n = find(key);
    return n ? as_string(*n, key_path(key), check) : fallback;
  }
  std::string required_string(std::string_view key, const string_check& check = {}) {
    return as_string(require(key), key_path(key), check);
  }

  template <class Int>
  Int integer(std::string_view key, Int fallback, int_range range) {
    const toml::node* n = find(key);
    return n ? as_integer<Int>(*n, key_path(key), range) : fallback;
  }
  template <class Int>
  Int required_integer(std::string_view key, int_range range) {
    return as_integer<Int>(require(key), key_path(key), range);
  }

  bool boolean(std::string_view key, bool fallback) {
    const toml::node* n = find(key);
    if (!n) return fallback;
    const auto* b = n->as_boolean();
    if (!b) fail(*n, key_path(key), std::string("expected a boolean, got ") + type_name(*n));
    return b->get();
  }

  // The node under `key` without making `key` a known key (for better
  // messages about keys that are deliberately not accepted).
  const toml::node* peek(std::string_view key) const { return table_ ? table_->get(key) : nullptr; }

  // Any finite number.
  double number(std::string_view key, double fallback) {
    const toml::node* n = find(key);
    return n ? as_number(*n, key_path(key)) : fallback;
  }

  // An array of integers, each in `range`; `fallback` when absent.
  template <class Int>
  std::vector<Int> integer_array(std::string_view key, std::vector<Int> fallback, int_range range) {
    const toml::node* n = find(key);
    if (!n) return fallback;
    const toml::array& a = as_array(*n, key_path(key));
    std::vector<Int> out;
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(as_integer<Int>(a[i], key_path(key) + "[" + std::to_string(i) + "]", range));
    return out;
  }

  // A finite number > 0 (durations).
  double positive_number(std::string_view key, double fallback) {
    const toml::node* n = find(key);
    if (!n) return fallback;
    const double v = as_number(*n, key_path(key));
    if (!(v > 0)) fail(*n, key_path(key), "must be > 0, got " + format_number(v));
    return v;
  }

  template <class E, std::size_t N>
  E choice(std::string_view key, E fallback, const enum_names<E> (&names)[N]) {
    const toml::node* n = find(key);
    if (!n) return fallback;
    const std::string v = as_string(*n, key_path(key));
    std::string accepted;
    for (const auto& [name, value] : names) {
      if (v == name) return value;
      accepted += (accepted.empty() ? "" : ", ") + quoted(name);
    }
    fail(*n, key_path(key),
         (N == 1 ? "must be " : "must be one of ") + accepted + ", got " + quoted(v));
  }

  // An array of strings, each checked by `check`; an optional one reads as [] when absent.
  std::vector<std::string> string_array(std::string_view key, const string_check& check = {},
                                        bool required = true) {
    const toml::node* found = required ? &require(key) : find(key);
    if (!found) return {};
    const toml::node& n = *found;
    const toml::array& a = as_array(n, key_path(key));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(as_string(a[i], key_path(key) + "[" + std::to_string(i) + "]", check));
    return out;
  }

  // A table of string values whose keys are free (checked by `check_key`).
  std::map<std::string, std::string> string_table(std::string_view key,
                                                  const string_check& check_key) {
    const toml::node* n = find(key);
    if (!n) return {};
    const auto* t = n->as_table();
    if (!t) fail(*n, key_path(key), std::string("expected a table, got ") + type_name(*n));
    std::map<std::string, std::string> out;
    for (auto&& [k, v] : *t) {
      const std::string entry = key_path(key) + "." + std::string(k.str());
      if (auto why = check_key(std::string(k.str())); !why.empty()) fail(k.source(), entry, why);
      out.emplace(k.str(), as_string(v, entry));
    }
    return out;
  }

  // A sub-table. A missing optional one reads as empty (all defaults).
  table_reader table(std::string_view key, bool required) {
    const toml::node* n = required ? &require(key, "section") : find(key);
    if (!n) return table_reader(*source_, nullptr, key_path(key), where_);
    const auto* t = n->as_table();
    if (!t) fail(*n, key_path(key), std::string("expected a table, got ") + type_name(*n));
    return table_reader(*source_, t, key_path(key), t->source());
  }

  // A required, non-empty array of tables ([[key]]).
  std::vector<table_reader> tables(std::string_view key) {
    const std::string what = "[[" + std::string(key) + "]] table";
    const toml::node& n = require(key, what);
    const auto* a = n.as_array();
    if (!a) fail(n, key_path(key), "expected " + what + "s, got " + type_name(n));
    if (a->empty()) fail(n, key_path(key), "at least one " + what + " is required");
    std::vector<table_reader> out;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string entry = key_path(key) + "[" + std::to_string(i) + "]";
      const auto* t = (*a)[i].as_table();
      if (!t) fail((*a)[i], entry, std::string("expected a table, got ") + type_name((*a)[i]));
      out.emplace_back(*source_, t, entry, t->source());
    }
    return out;
  }

  // Rejects the first (in file order) key that no accessor asked for.
  void finish() const {
    if (!table_) return;
    const toml::key* first = nullptr;
    for (auto&& [k, v] : *table_) {
      if (is_known(k.str())) continue;
      const auto& at = k.source().begin;
      if (!first || std::tie(at.line, at.column) <
                        std::tie(first->source().begin.line, first->source().begin.column))
        first = &k;
    }
    if (!first) return;
    const bool root = path_.empty();
    const toml::node& value = *table_->get(first->str());
    const bool is_section = root && (value.is_table() || value.is_array_of_tables());
    std::string why = is_section ? "unknown section" : "unknown key";
    std::string near;
    for (const auto& k : known_)
      if (looks_like_typo(first->str(), k)) near = k;
    if (!near.empty()) {
      why += " (did you mean " + (is_section ? "[" + near + "]" : quoted(near)) + "?)";
    } else {
      std::string list;
      for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
      why += root ? "; the study file has the sections " + list
                  : "; [" + path_for_list() + "] has " + list;
    }
    fail(first->source(), key_path(first->str()), why);
  }

 private:
  bool is_known(std::string_view k) const {
    return std::find(known_.begin(), known_.end(), k) != known_.end();
  }

  const toml::key* unknown_key_near(std::string_view wanted) const {
    if (!table_) return nullptr;
    for (auto&& [k, v] : *table_)
      if (!is_known(k.str()) && looks_like_typo(k.str(), wanted)) return &k;
    return nullptr;
  }

  // "fields[2]" is listed as "fields" in "[fields] has name, size".
  std::string path_for_list() const { return path_.substr(0, path_.find('[')); }

  const std::string* source_;
  const toml::table* table_;  // nullptr: an absent optional table
  std::string path_;
  toml::source_region where_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------------------
// Sections. Each reads its keys, then calls finish() so that its unknown keys
// are reported before the next section is looked at.

study_section read_study(table_reader t) {
  study_section s;
  s.name = t.required_string("name", check_name);
  s.output_dir = t.string("output_dir", "studies/" + s.name, check_not_empty);
  // A TOML integer is signed 64-bit, hence the upper bound.
  s.seed = t.integer<std::uint64_t>("seed", s.seed, {0, int64_max});
  s.mode = t.choice("mode", s.mode, study_modes);
  t.finish();
  return s;
}

// [launcher.server_job] / [launcher.client_job]. `ranks_key` is where the
// number of tasks of these jobs comes from (server.ranks / client.ranks).
job_placement read_job_placement(table_reader t, const char* ranks_key) {
  job_placement p;
  p.partition = t.string("partition", p.partition, check_word);
  p.account = t.string("account", p.account, check_word);
  p.time = t.string("time", p.time, check_time_limit);
  p.nodes = t.integer<std::uint32_t>("nodes", p.nodes, {1, {}});
  p.gres = t.string("gres", p.gres, check_word);
  p.extra = t.string_array("extra", check_option, false);
  // One number of tasks per job kind, kept where the rest of the study reads it.
  for (const char* tasks : {"tasks", "ntasks"})
    if (t.peek(tasks))
      t.fail_key(tasks, std::string("not a key here: the number of tasks is ") + ranks_key);
  t.finish();
  return p;
}

launcher_config read_launcher(table_reader t) {
  launcher_config l;
  l.backend = t.choice("backend", l.backend, backends);
  l.job_limit = t.integer<std::uint32_t>("job_limit", l.job_limit, {1, {}});
  l.max_retries = t.integer<std::uint32_t>("max_retries", l.max_retries, {0, {}});
  l.client_timeout = t.positive_number("client_timeout", l.client_timeout);
  l.server_timeout = t.positive_number("server_timeout", l.server_timeout);
  l.poll_interval = t.positive_number("poll_interval", l.poll_interval);
  if (l.poll_interval > max_poll_interval)
    t.fail_key("poll_interval", "must be in (0, " + format_number(max_poll_interval) +
                                    "] seconds, got " + format_number(l.poll_interval));
  l.shell_host = t.string("shell_host", l.shell_host, check_host);
  l.shell_port = t.integer<std::uint16_t>("shell_port", l.shell_port, {0, 65535});
  l.schedule_in_schedule = t.boolean("schedule_in_schedule", l.schedule_in_schedule);
  l.allocation_nodes = t.integer<std::uint32_t>("allocation_nodes", l.allocation_nodes, {1, {}});
  l.allocation_time = t.string("allocation_time", l.allocation_time, check_duration);
  l.server_job = read_job_placement(t.table("server_job", false), "server.ranks");
  l.client_job = read_job_placement(t.table("client_job", false), "client.ranks");
  t.finish();
  // Job steps inside one allocation are a Slurm notion (srun --jobid).
  if (l.schedule_in_schedule && l.backend != launcher_backend::slurm)
    t.fail_key("schedule_in_schedule", std::string("true requires launcher.backend = \"slurm\", got \"") +
                                           to_string(l.backend) + "\"");
  return l;
}

server_config read_server(table_reader t, const study_section& study) {
  server_config s;
  s.ranks = t.integer<std::uint32_t>("ranks", s.ranks, {1, {}});
  s.host = t.string("host", s.host, check_host);
  s.port = t.integer<std::uint16_t>("port", s.port, {0, 65535});
  // The frame length prefix is a u32: 4095 MiB plus a header still fits.
  s.max_frame_mb = t.integer<std::uint32_t>("max_frame_mb", s.max_frame_mb, {1, 4095});
  s.window_mb = t.integer<std::uint32_t>("window_mb", s.window_mb, {1, {}});
  s.sink = t.choice("sink", s.sink, sinks);
  s.dataset_dir = t.string("dataset_dir", study.output_dir + "/dataset", check_not_empty);
  t.finish();
  // Each server rank would write its own part of the same files.
  if (s.sink == sink_kind::dataset && s.ranks != 1)
    t.fail_key("sink", "\"dataset\" requires server.ranks = 1, got server.ranks = " +
                           std::to_string(s.ranks));
  return s;
}

client_config read_client(table_reader t, sink_kind sink) {
  client_config c;
  c.command = t.string_array("command");
  if (c.command.empty()) t.fail_key("command", "must name the program to run, got an empty array");
  if (c.command.front().empty()) t.fail_key("command", "the program name (first element) is empty");
  c.ranks = t.integer<std::uint32_t>("ranks", c.ranks, {1, max_client_ranks});
  c.steps = t.integer<std::uint32_t>("steps", c.steps, {1, 1u << 24});
  c.env = t.string_table("env", check_env_name);
  t.finish();
  // Without it the server cannot tell a simulation that stopped early from a
  // complete one: its partial steps would be trained on, or written as a
  // complete dataset, and never retried.
  if (c.steps == 0 && sink != sink_kind::count)
    t.fail_key("steps", std::string("required with server.sink = \"") + to_string(sink) +
                            "\" (the number of time steps each simulation sends: a simulation that "
                            "ends early is then retried, not counted complete)");
  return c;
}

parameter_bounds read_pair(const table_reader& t, const toml::node& n, const std::string& key) {
  const auto* a = n.as_array();
  if (!a) t.fail(n, key, std::string("expected a [lo, hi] pair, got ") + type_name(n));
  if (a->size() != 2)
    t.fail(n, key, "expected a [lo, hi] pair, got " + count_of(a->size(), "value"));
  const parameter_bounds b{t.as_number((*a)[0], key + "[0]"), t.as_number((*a)[1], key + "[1]")};
  if (!(b.lo < b.hi))
    t.fail(n, key, "lo must be < hi, got [" + format_number(b.lo) + ", " + format_number(b.hi) + "]");
  return b;
}

// bounds = [lo, hi] for every name, or [[lo, hi], ...] with one pair per name.
std::vector<parameter_bounds> read_bounds(table_reader& t, std::size_t names) {
  const toml::node* n = t.find("bounds");
  if (!n) return std::vector<parameter_bounds>(names, parameter_bounds{});
  const std::string key = t.key_path("bounds");
  const toml::array& a = t.as_array(*n, key);
  if (a.empty()) t.fail(*n, key, "expected [lo, hi] or one [lo, hi] pair per name, got []");
  if (!a[0].is_array()) return std::vector<parameter_bounds>(names, read_pair(t, *n, key));
  std::vector<parameter_bounds> out;
  for (std::size_t i = 0; i < a.size(); ++i)
    out.push_back(read_pair(t, a[i], key + "[" + std::to_string(i) + "]"));
  if (out.size() != names)
    t.fail(*n, key,
           count_of(out.size(), "pair") + " given for " + count_of(names, "name") +
               " (give one [lo, hi] for all names, or one pair per name)");
  return out;
}

parameters_config read_parameters(table_reader t) {
  parameters_config p;
  p.names = t.string_array("names", check_name);
  if (p.names.empty()) t.fail_key("names", "at least one parameter name is required");
  for (std::size_t i = 1; i < p.names.size(); ++i) {
    const auto first = std::find(p.names.begin(), p.names.begin() + i, p.names[i]);
    if (first != p.names.begin() + i)
      t.fail_key("names", "duplicate parameter name " + quoted(p.names[i]) + " (names[" +
                              std::to_string(first - p.names.begin()) + "] and names[" +
                              std::to_string(i) + "])");
  }
  p.bounds = read_bounds(t, p.names.size());
  p.sampler = t.choice("sampler", p.sampler, samplers);
  p.scramble = t.boolean("scramble", p.scramble);
  // Simulation ids travel as u32 in every frame: that is the hard limit.
  p.count = t.required_integer<std::uint64_t>("count", {1, uint32_max});
  t.finish();
  // GSL's sequences stop at a number of dimensions and of points: say so here
  // rather than when the server draws the design.
  const std::string sampler = quoted(to_string(p.sampler));
  if (p.names.size() > max_parameters(p.sampler))
    t.fail_key("sampler", sampler + " supports at most " + std::to_string(max_parameters(p.sampler)) +
                              " parameters, got " + count_of(p.names.size(), "name"));
  if (p.count > max_count(p.sampler))
    t.fail_key("count", "sampler " + sampler + " supports at most " +
                            std::to_string(max_count(p.sampler)) + " simulations, got " +
                            std::to_string(p.count));
  // Every simulation costs memory up front (the whole design is drawn and
  // submitted at once): refuse here what would exhaust it mid-study.
  if (p.count > max_simulations)
    t.fail_key("count", "at most " + std::to_string(max_simulations) +
                            " simulations per study (the server and the launcher keep about " +
                            human_bytes(bytes_per_simulation(p.names.size())) +
                            " per simulation in memory: " + std::to_string(p.count) +
                            " would need about " +
                            human_bytes(static_cast<double>(p.count) *
                                        static_cast<double>(bytes_per_simulation(p.names.size()))) +
                            "), got " + std::to_string(p.count));
  if (p.scramble && (p.sampler == sampler_kind::uniform || p.sampler == sampler_kind::lhs))
    t.fail_key("scramble", "true requires a quasi-random sampler (\"halton\", \"reverse-halton\", "
                           "\"sobol\"), got " + sampler);
  return p;
}

std::vector<field_config> read_fields(table_reader& file, const study_config& c) {
  std::vector<field_config> fields;
  std::vector<std::uint32_t> name_lines;
  for (table_reader& t : file.tables("fields")) {
    field_config f;
    f.name = t.required_string("name", check_name);
    f.size = t.required_integer<std::uint64_t>("size", {1, {}});
    t.finish();
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (fields[i].name == f.name)
        t.fail_key("name", "duplicate field name " + quoted(f.name) + " (also fields[" +
                               std::to_string(i) + "] on line " + std::to_string(name_lines[i]) +
                               ")");
    // In training mode a whole time step travels as one float32 frame, which
    // the server refuses above max_frame_mb: say so now rather than mid-study.
    const std::uint64_t frame = 40 + 4 * f.size;
    if (c.study.mode == study_mode::training &&
        (f.size > c.server.max_frame_bytes() / 4 || frame > c.server.max_frame_bytes()))
      t.fail_key("size", std::to_string(f.size) + " float32 values per time step do not fit in a " +
                             "frame of server.max_frame_mb = " +
                             std::to_string(c.server.max_frame_mb) + " MiB");
    fields.push_back(std::move(f));
    name_lines.push_back(t.line_of_key("name"));
  }
  return fields;
}

buffer_config read_buffer(table_reader t) {
  buffer_config b;
  b.policy = t.choice("policy", b.policy, buffer_policies);
  b.capacity = t.integer<std::uint64_t>("capacity", b.capacity, {1, {}});
  b.threshold = t.integer<std::uint64_t>("threshold", b.threshold, {0, {}});
  t.finish();
  // A threshold the buffer can never exceed would hold every batch back.
  if (b.threshold >= b.capacity)
    t.fail_key("threshold", "must be < buffer.capacity = " + std::to_string(b.capacity) + ", got " +
                                std::to_string(b.threshold));
  return b;
}

std::string check_activation(const std::string& s) {
  for (const char* a : {"relu", "tanh", "gelu", "silu"})
    if (s == a) return std::string();
  return "must be one of \"relu\", \"tanh\", \"gelu\", \"silu\", got " + quoted(s);
}

training_config read_training(table_reader t, const std::vector<field_config>& fields,
                              const buffer_config& buffer) {
  training_config c;
  c.field = t.string("field", fields.empty() ? std::string() : fields.front().name, check_not_empty);
  c.time_steps = t.integer<std::uint32_t>("time_steps", c.time_steps, {1, {}});
  c.hidden = t.integer_array<std::uint32_t>("hidden", c.hidden, {1, 1 << 20});
  c.activation = t.string("activation", c.activation, check_activation);
  c.batch_size = t.integer<std::uint32_t>("batch_size", c.batch_size, {1, 1 << 20});
  c.learning_rate = t.positive_number("learning_rate", c.learning_rate);
  c.lr_halving_batches = t.integer<std::uint64_t>("lr_halving_batches", c.lr_halving_batches, {0, {}});
  c.min_learning_rate = t.positive_number("min_learning_rate", c.min_learning_rate);
  c.output = t.choice("output", c.output, output_scalings);
  c.output_mean = t.number("output_mean", c.output_mean);
  c.output_std = t.positive_number("output_std", c.output_std);
  c.validation_dir = t.string("validation_dir", c.validation_dir);
  c.validation_every = t.integer<std::uint64_t>("validation_every", c.validation_every, {1, {}});
  c.metrics_every = t.integer<std::uint32_t>("metrics_every", c.metrics_every, {1, {}});
  c.threads = t.integer<std::uint32_t>("threads", c.threads, {0, 1024});
  t.finish();
  const bool known = std::any_of(fields.begin(), fields.end(),
                                 [&](const field_config& f) { return f.name == c.field; });
  if (!known) t.fail_key("field", "no [[fields]] entry is named " + quoted(c.field));
  // A batch comes from one rank's buffer: a FIFO or FIRO buffer smaller than a
  // batch could never fill one, and the study would wait forever.
  if (c.batch_size > buffer.capacity)
    t.fail_key("batch_size", "must be <= buffer.capacity = " + std::to_string(buffer.capacity) +
                                 " (a batch is drawn from one server rank's buffer), got " +
                                 std::to_string(c.batch_size));
  return c;
}

double read_fraction(table_reader& t, std::string_view key, double fallback) {
  const double v = t.number(key, fallback);
  if (v < 0 || v > 1) t.fail_key(key, "must be in [0, 1], got " + format_number(v));
  return v;
}

breed_config read_breed(table_reader t, const study_config& c) {
  breed_config b;
  b.enabled = true;
  b.period = t.integer<std::uint32_t>("period", b.period, {1, {}});
  b.window = t.integer<std::uint32_t>("window", b.window, {1, {}});
  b.sigma = t.positive_number("sigma", b.sigma);
  b.r_start = read_fraction(t, "r_start", b.r_start);
  b.r_end = read_fraction(t, "r_end", b.r_end);
  b.r_steps = t.integer<std::uint32_t>("r_steps", b.r_steps, {1, {}});
  t.finish();
  if (b.sigma > 1) t.fail_key("sigma", "must be in (0, 1] (a share of each parameter's range), got " +
                                           format_number(b.sigma));
  // Breed learns from the trainer's per-sample losses.
  if (c.server.sink != sink_kind::train)
    t.fail_key("period", std::string("[breed] needs server.sink = \"train\", got \"") +
                             to_string(c.server.sink) + "\"");
  return b;
}

}  // namespace

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
  // Settings nobody would read are a mistake in the study (a forgotten
  // sink = "train" most likely): say so before any of their values.
  for (const char* section : {"buffer", "training"})
    if (c.server.sink != sink_kind::train && file.peek(section))
      file.fail_key(section, std::string("[") + section + "] needs server.sink = \"train\", got \"" +
                                 to_string(c.server.sink) + "\"");
  c.buffer = read_buffer(file.table("buffer", false));
  c.training = read_training(file.table("training", false), c.fields, c.buffer);
  if (file.find("breed")) c.breed = read_breed(file.table("breed", false), c);
  file.finish();
  return c;
}

study_config load_study(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path, std::string("cannot read the study file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw config_error(path, std::string("cannot read the study file: ") + std::strerror(errno));
  return parse_study(text.str(), path);
}

// ---------------------------------------------------------------------------
// to_toml: the same sections in the same order, every key written.

namespace {

std::string string_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

void write_study(std::ostream& out, const study_section& s) {
  if (s.seed > static_cast<std::uint64_t>(int64_max))
    throw config_error("to_toml", 0, 0, "study.seed",
                       "must be <= " + std::to_string(int64_max) + " to be written as a TOML integer, got " +
                           std::to_string(s.seed));
  out << "[study]\n"
      << "name = " << quoted(s.name) << "\n"
      << "output_dir = " << quoted(s.output_dir) << "\n"
      << "seed = " << s.seed << "\n"
      << "mode = " << quoted(to_string(s.mode)) << "\n";
}

void write_job_placement(std::ostream& out, const char* header, const job_placement& p) {
  out << header << "\n"
      << "partition = " << quoted(p.partition) << "\n"
      << "account = " << quoted(p.account) << "\n"
      << "time = " << quoted(p.time) << "\n"
      << "nodes = " << p.nodes << "\n"
      << "gres = " << quoted(p.gres) << "\n"
      << "extra = " << string_list(p.extra) << "\n";
}

void write_launcher(std::ostream& out, const launcher_config& l) {
  out << "[launcher]\n"
      << "backend = " << quoted(to_string(l.backend)) << "\n"
      << "job_limit = " << l.job_limit << "\n"
      << "max_retries = " << l.max_retries << "\n"
      << "client_timeout = " << format_number(l.client_timeout) << "\n"
      << "server_timeout = " << format_number(l.server_timeout) << "\n"
      << "poll_interval = " << format_number(l.poll_interval) << "\n"
      << "shell_host = " << quoted(l.shell_host) << "\n"
      << "shell_port = " << l.shell_port << "\n"
      << "schedule_in_schedule = " << (l.schedule_in_schedule ? "true" : "false") << "\n"
      << "allocation_nodes = " << l.allocation_nodes << "\n"
      << "allocation_time = " << quoted(l.allocation_time) << "\n";
  out << "\n";
  write_job_placement(out, "[launcher.server_job]", l.server_job);
  out << "\n";
  write_job_placement(out, "[launcher.client_job]", l.client_job);
}

void write_server(std::ostream& out, const server_config& s) {
  out << "[server]\n"
      << "ranks = " << s.ranks << "\n"
      << "host = " << quoted(s.host) << "\n"
      << "port = " << s.port << "\n"
      << "max_frame_mb = " << s.max_frame_mb << "\n"
      << "window_mb = " << s.window_mb << "\n"
      << "sink = " << quoted(to_string(s.sink)) << "\n"
      << "dataset_dir = " << quoted(s.dataset_dir) << "\n";
}

void write_client(std::ostream& out, const client_config& c) {
  out << "[client]\n"
      << "command = " << string_list(c.command) << "\n"
      << "ranks = " << c.ranks << "\n";
  if (c.steps > 0) out << "steps = " << c.steps << "\n";
  out << "env = {";
  bool first = true;
  for (const auto& [k, v] : c.env) {
    out << (first ? " " : ", ") << quoted(k) << " = " << quoted(v);
    first = false;
  }
  out << (first ? "}" : " }") << "\n";
}

void write_parameters(std::ostream& out, const parameters_config& p) {
  out << "[parameters]\n"
      << "names = " << string_list(p.names) << "\n"
      << "bounds = [";
  for (std::size_t i = 0; i < p.bounds.size(); ++i)
    out << (i ? ", " : "") << "[" << format_number(p.bounds[i].lo) << ", "
        << format_number(p.bounds[i].hi) << "]";
  out << "]\n"
      << "sampler = " << quoted(to_string(p.sampler)) << "\n"
      << "scramble = " << (p.scramble ? "true" : "false") << "\n"
      << "count = " << p.count << "\n";
}

void write_fields(std::ostream& out, const std::vector<field_config>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out << (i ? "\n" : "") << "[[fields]]\n"
        << "name = " << quoted(fields[i].name) << "\n"
        << "size = " << fields[i].size << "\n";
  }
}

std::string number_list(const std::vector<std::uint32_t>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + std::to_string(items[i]);
  return out + "]";
}

void write_buffer(std::ostream& out, const buffer_config& b) {
  out << "[buffer]\n"
      << "policy = " << quoted(to_string(b.policy)) << "\n"
      << "capacity = " << b.capacity << "\n"
      << "threshold = " << b.threshold << "\n";
}

void write_training(std::ostream& out, const training_config& c) {
  out << "[training]\n"
      << "field = " << quoted(c.field) << "\n"
      << "time_steps = " << c.time_steps << "\n"
      << "hidden = " << number_list(c.hidden) << "\n"
      << "activation = " << quoted(c.activation) << "\n"
      << "batch_size = " << c.batch_size << "\n"
      << "learning_rate = " << format_number(c.learning_rate) << "\n"
      << "lr_halving_batches = " << c.lr_halving_batches << "\n"
      << "min_learning_rate = " << format_number(c.min_learning_rate) << "\n"
      << "output = " << quoted(to_string(c.output)) << "\n"
      << "output_mean = " << format_number(c.output_mean) << "\n"
      << "output_std = " << format_number(c.output_std) << "\n"
      << "validation_dir = " << quoted(c.validation_dir) << "\n"
      << "validation_every = " << c.validation_every << "\n"
      << "metrics_every = " << c.metrics_every << "\n"
      << "threads = " << c.threads << "\n";
}

void write_breed(std::ostream& out, const breed_config& b) {
  out << "[breed]\n"
      << "period = " << b.period << "\n"
      << "window = " << b.window << "\n"
      << "sigma = " << format_number(b.sigma) << "\n"
      << "r_start = " << format_number(b.r_start) << "\n"
      << "r_end = " << format_number(b.r_end) << "\n"
      << "r_steps = " << b.r_steps << "\n";
}

}  // namespace

std::string to_toml(const study_config& c) {
  std::ostringstream out;
  out << "# Resolved study configuration: every default written out.\n\n";
  write_study(out, c.study);
  out << "\n";
  write_launcher(out, c.launcher);
  out << "\n";
  write_server(out, c.server);
  out << "\n";
  write_client(out, c.client);
  out << "\n";
  write_parameters(out, c.parameters);
  out << "\n";
  write_fields(out, c.fields);
  // Only a training study may have these sections (parse_study refuses them otherwise).
  if (c.server.sink == sink_kind::train) {
    out << "\n";
    write_buffer(out, c.buffer);
    out << "\n";
    write_training(out, c.training);
  }
  if (c.breed.enabled) {  // the section's presence is what enables Breed
    out << "\n";
    write_breed(out, c.breed);
  }
  return out.str();
}

// ---------------------------------------------------------------------------

bool operator==(const study_section& a, const study_section& b) {
  return std::tie(a.name, a.output_dir, a.seed, a.mode) ==
         std::tie(b.name, b.output_dir, b.seed, b.mode);
}
bool operator==(const job_placement& a, const job_placement& b) {
  return std::tie(a.partition, a.account, a.time, a.nodes, a.gres, a.extra) ==
         std::tie(b.partition, b.account, b.time, b.nodes, b.gres, b.extra);
}
bool operator==(const launcher_config& a, const launcher_config& b) {
  return std::tie(a.backend, a.job_limit, a.max_retries, a.client_timeout, a.server_timeout,
                  a.poll_interval, a.shell_host, a.shell_port, a.schedule_in_schedule,
                  a.allocation_nodes, a.allocation_time, a.server_job, a.client_job) ==
         std::tie(b.backend, b.job_limit, b.max_retries, b.client_timeout, b.server_timeout,
                  b.poll_interval, b.shell_host, b.shell_port, b.schedule_in_schedule,
                  b.allocation_nodes, b.allocation_time, b.server_job, b.client_job);
}
bool operator==(const server_config& a, const server_config& b) {
  return std::tie(a.ranks, a.host, a.port, a.max_frame_mb, a.window_mb, a.sink, a.dataset_dir) ==
         std::tie(b.ranks, b.host, b.port, b.max_frame_mb, b.window_mb, b.sink, b.dataset_dir);
}
bool operator==(const client_config& a, const client_config& b) {
  return std::tie(a.command, a.ranks, a.env, a.steps) == std::tie(b.command, b.ranks, b.env, b.steps);
}
bool operator==(const parameter_bounds& a, const parameter_bounds& b) {
  return a.lo == b.lo && a.hi == b.hi;
}
bool operator==(const parameters_config& a, const parameters_config& b) {
  return std::tie(a.names, a.bounds, a.sampler, a.scramble, a.count) ==
         std::tie(b.names, b.bounds, b.sampler, b.scramble, b.count);
}
bool operator==(const field_config& a, const field_config& b) {
  return a.name == b.name && a.size == b.size;
}
bool operator==(const buffer_config& a, const buffer_config& b) {
  return std::tie(a.policy, a.capacity, a.threshold) == std::tie(b.policy, b.capacity, b.threshold);
}
bool operator==(const training_config& a, const training_config& b) {
  return std::tie(a.field, a.time_steps, a.hidden, a.activation, a.batch_size, a.learning_rate,
                  a.lr_halving_batches, a.min_learning_rate, a.output, a.output_mean, a.output_std,
                  a.validation_dir, a.validation_every, a.metrics_every, a.threads) ==
         std::tie(b.field, b.time_steps, b.hidden, b.activation, b.batch_size, b.learning_rate,
                  b.lr_halving_batches, b.min_learning_rate, b.output, b.output_mean, b.output_std,
                  b.validation_dir, b.validation_every, b.metrics_every, b.threads);
}
bool operator==(const breed_config& a, const breed_config& b) {
  return std::tie(a.enabled, a.period, a.window, a.sigma, a.r_start, a.r_end, a.r_steps) ==
         std::tie(b.enabled, b.period, b.window, b.sigma, b.r_start, b.r_end, b.r_steps);
}
bool operator==(const study_config& a, const study_config& b) {
  return std::tie(a.study, a.launcher, a.server, a.client, a.parameters, a.fields, a.buffer,
                  a.training, a.breed) ==
         std::tie(b.study, b.launcher, b.server, b.client, b.parameters, b.fields, b.buffer,
                  b.training, b.breed);
}

}  // namespace melissa::config
