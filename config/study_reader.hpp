// Internal to config/: the TOML reader that the study file parser is built on.
// TOML++ stays private to the library: only config/*.cpp include this header
// (config/study.hpp is the one public header).
//
// Structure: a small `table_reader` wraps one TOML table. Each accessor reads a
// key with its type, range and default, and records the key as known; finish()
// then rejects every key nobody asked for, so the accepted keys are exactly the
// ones the read_* functions read (study_sections.cpp) and no separate list can
// drift out of date.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/study.hpp"

namespace melissa::config::detail {

// ---------------------------------------------------------------------------
// Names of enum values, shared by the parser and by to_string / to_toml.

template <class E>
using enum_names = std::pair<const char*, E>;

inline constexpr enum_names<study_mode> study_modes[] = {
    {"training", study_mode::training}, {"statistics", study_mode::statistics}};
inline constexpr enum_names<launcher_backend> backends[] = {{"local", launcher_backend::local},
                                                     {"slurm", launcher_backend::slurm},
                                                     {"oar", launcher_backend::oar}};
inline constexpr enum_names<sink_kind> sinks[] = {{"count", sink_kind::count},
                                           {"dataset", sink_kind::dataset},
                                           {"train", sink_kind::train}};
inline constexpr enum_names<buffer_policy> buffer_policies[] = {{"fifo", buffer_policy::fifo},
                                                         {"firo", buffer_policy::firo},
                                                         {"reservoir", buffer_policy::reservoir}};
inline constexpr enum_names<output_scaling> output_scalings[] = {{"running", output_scaling::running},
                                                          {"constant", output_scaling::constant}};
inline constexpr enum_names<sampler_kind> samplers[] = {{"uniform", sampler_kind::uniform},
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
// Message helpers (study_reader.cpp).

inline constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t uint32_max = std::numeric_limits<std::uint32_t>::max();

const char* type_name(const toml::node& n);

// A string as a TOML basic string: quoted, with the characters TOML requires
// escaped. Used both in messages and by to_toml, so what the user reads in an
// error is valid TOML too.
std::string quoted(std::string_view s);

// Shortest text that reads back to the same double, always with a '.' or an
// exponent so that TOML sees a float.
std::string format_number(double v);

// "1.5 KB", "1.4 TB": decimal units, for messages.
std::string human_bytes(double bytes);

// "1 pair", "3 pairs".
std::string count_of(std::size_t n, const std::string& noun);

// Close enough to be a typo: a couple of edits, and fewer edits than the word has letters.
bool looks_like_typo(std::string_view written, std::string_view meant);

// A string check returns why the value is invalid, or "" when it is fine.
using string_check = std::function<std::string(const std::string&)>;

// Integer range; an absent `hi` means "as large as the field's type allows".
struct int_range {
  std::int64_t lo;
  std::optional<std::int64_t> hi;
};

inline std::uint32_t line_of(const toml::source_region& r) { return r.begin.line ? r.begin.line : 1; }
inline std::uint32_t column_of(const toml::source_region& r) { return r.begin.line ? r.begin.column : 1; }

// ---------------------------------------------------------------------------
// One table of the study file (see the comment at the top of this header).

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

  // An array of finite numbers; [] when absent.
  std::vector<double> number_array(std::string_view key) {
    const toml::node* n = find(key);
    if (!n) return {};
    const toml::array& a = as_array(*n, key_path(key));
    std::vector<double> out;
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(as_number(a[i], key_path(key) + "[" + std::to_string(i) + "]"));
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

}  // namespace melissa::config::detail
