#include "actors/checkpoint_keeper/state_files.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace melissa::checkpoint {
namespace {

// received_steps.json: version 2 writes a complete simulation's steps as
// one series record (issue 16), version 1 spelled out every bit; both read.
constexpr int received_format_version = 2;
constexpr int table_format_version = 1;

// Bit i of the set is bit (i % 4) of hex digit i / 4: "3" = steps 0 and 1.
std::string bits_to_hex(const std::vector<bool>& bits) {
  std::string hex((bits.size() + 3) / 4, '0');
  for (std::size_t i = 0; i < bits.size(); ++i)
    if (bits[i]) {
      int digit = hex[i / 4] <= '9' ? hex[i / 4] - '0' : hex[i / 4] - 'a' + 10;
      digit |= 1 << (i % 4);
      hex[i / 4] = "0123456789abcdef"[digit];
    }
  return hex;
}

std::vector<bool> hex_to_bits(const std::string& hex, std::size_t count) {
  if (hex.size() != (count + 3) / 4)
    throw std::runtime_error("a bitset of " + std::to_string(count) + " steps has " +
                             std::to_string(hex.size()) + " hex digits");
  std::vector<bool> bits(count, false);
  for (std::size_t i = 0; i < count; ++i) {
    const char c = hex[i / 4];
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else throw std::runtime_error(std::string("'") + c + "' is not a hex digit");
    bits[i] = (digit >> (i % 4)) & 1;
  }
  return bits;
}

// The file's version, if it is one of `oldest`..`newest`.
int check_version(const nlohmann::json& j, int oldest, int newest) {
  const auto* v = j.is_object() && j.contains("format_version") ? &j.at("format_version") : nullptr;
  if (!v || !v->is_number_integer() || v->get<int>() < oldest || v->get<int>() > newest)
    throw std::runtime_error("not a version " + std::to_string(oldest) +
                             (oldest == newest ? "" : " or " + std::to_string(newest)) +
                             " checkpoint state file");
  return v->get<int>();
}

// A series record read back ([fields, length, first, stride, count]),
// checked before its bits are made.
std::vector<bool> series_bits(const nlohmann::json& r, std::uint32_t& fields, std::uint64_t& set_bits) {
  if (!r.is_array() || r.size() != 5)
    throw std::runtime_error("a series is [fields, length, first, stride, count], not " + r.dump());
  fields = r.at(0).get<std::uint32_t>();
  const auto length = r.at(1).get<std::uint32_t>();
  const auto first = r.at(2).get<std::uint64_t>();
  const auto stride = r.at(3).get<std::uint64_t>();
  const auto count = r.at(4).get<std::uint64_t>();
  if (fields == 0 || stride == 0 || count == 0 || first + (count - 1) * stride >= length)
    throw std::runtime_error("a series of " + std::to_string(count) + " steps from " +
                             std::to_string(first) + " by " + std::to_string(stride) +
                             " does not fit " + std::to_string(length) + " steps");
  std::vector<bool> bits(length, false);
  for (std::uint64_t i = 0; i < count; ++i) bits[first + i * stride] = true;
  set_bits = fields * count;
  return bits;
}

template <class F>
auto parsing(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("checkpoint state: ") + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("checkpoint state: ") + e.what());
  }
}

}  // namespace

std::string step_log_to_json(const step_log& log) {
  nlohmann::json sims = nlohmann::json::array();
  for (const auto& [sim, s] : log.simulations()) {
    nlohmann::json entry = {{"sim", sim},
                            {"stored", s.stored},
                            {"duplicates", s.duplicates},
                            {"attempts", s.attempts},
                            {"done", s.done}};
    if (const auto* r = s.compact_series()) {
      // [fields, length, first, stride, count]: a few bytes whatever the steps.
      entry["series"] = {r->fields, r->length, r->first, r->stride, r->count};
    } else {
      nlohmann::json fields = nlohmann::json::array();
      for (std::uint32_t f = 0; f < s.field_count(); ++f)
        fields.push_back({{"steps", s.field_length(f)}, {"bits", bits_to_hex(s.field_bits(f))}});
      entry["fields"] = std::move(fields);
    }
    sims.push_back(std::move(entry));
  }
  return nlohmann::json{{"format_version", received_format_version}, {"simulations", sims}}.dump() + "\n";
}

step_log step_log_from_json(const std::string& text) {
  return parsing([&] {
    const auto j = nlohmann::json::parse(text);
    const int version = check_version(j, 1, received_format_version);
    std::map<std::uint32_t, step_log::simulation> sims;
    for (const auto& entry : j.at("simulations")) {
      step_log::simulation s;
      const auto sim = entry.at("sim").get<std::uint32_t>();
      s.stored = entry.at("stored").get<std::uint64_t>();
      s.duplicates = entry.at("duplicates").get<std::uint64_t>();
      s.attempts = entry.at("attempts").get<std::set<std::uint32_t>>();
      s.done = entry.at("done").get<bool>();
      std::uint64_t set_bits = 0;
      if (version >= 2 && entry.contains("series")) {
        // Made back into bits here; restore() compacts the done ones again.
        std::uint32_t fields = 0;
        const auto bits = series_bits(entry.at("series"), fields, set_bits);
        for (std::uint32_t f = 0; f < fields; ++f) s.add_field(bits);
      } else {
        for (const auto& field : entry.at("fields")) {
          auto bits = hex_to_bits(field.at("bits").get<std::string>(), field.at("steps").get<std::uint32_t>());
          for (bool b : bits) set_bits += b ? 1 : 0;
          s.add_field(std::move(bits));
        }
      }
      // The count and the bits must agree, or exactly-once is lost.
      if (set_bits != s.stored)
        throw std::runtime_error("simulation " + std::to_string(sim) + ": " +
                                 std::to_string(s.stored) + " steps stored but " +
                                 std::to_string(set_bits) + " bits set");
      if (!sims.emplace(sim, std::move(s)).second)
        throw std::runtime_error("simulation " + std::to_string(sim) + " listed twice");
    }
    return step_log::restore(std::move(sims));
  });
}

std::string simulation_table_to_json(const simulation_table_snapshot& table) {
  nlohmann::json states = nlohmann::json::array();
  for (auto s : table.states) states.push_back(to_string(s));
  return nlohmann::json{{"format_version", table_format_version},
                        {"parameters", table.parameters},
                        {"states", states},
                        {"changes", table.changes}}
             .dump() +
         "\n";
}

simulation_table_snapshot simulation_table_from_json(const std::string& text) {
  return parsing([&] {
    const auto j = nlohmann::json::parse(text);
    check_version(j, table_format_version, table_format_version);
    simulation_table_snapshot t;
    t.parameters = j.at("parameters").get<std::vector<std::vector<double>>>();
    t.changes = j.at("changes").get<std::vector<std::uint32_t>>();
    for (const auto& name : j.at("states").get<std::vector<std::string>>()) {
      sim_state s;
      if (name == to_string(sim_state::pending)) s = sim_state::pending;
      else if (name == to_string(sim_state::submitted)) s = sim_state::submitted;
      else if (name == to_string(sim_state::complete)) s = sim_state::complete;
      else if (name == to_string(sim_state::failed)) s = sim_state::failed;
      else throw std::runtime_error("unknown simulation state '" + name + "'");
      t.states.push_back(s);
    }
    if (t.states.size() != t.parameters.size() || t.changes.size() != t.parameters.size())
      throw std::runtime_error("parameters, states and changes differ in length");
    return t;
  });
}

}  // namespace melissa::checkpoint
