#include "actors/checkpoint_keeper/state_files.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace melissa::checkpoint {
namespace {

constexpr int state_format_version = 1;

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

void check_version(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("format_version") ||
      j.at("format_version") != state_format_version)
    throw std::runtime_error("not a version " + std::to_string(state_format_version) +
                             " checkpoint state file");
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
    nlohmann::json fields = nlohmann::json::array();
    for (std::uint32_t f = 0; f < s.field_count(); ++f)
      fields.push_back({{"steps", s.field_length(f)}, {"bits", bits_to_hex(s.field_bits(f))}});
    sims.push_back({{"sim", sim},
                    {"stored", s.stored},
                    {"duplicates", s.duplicates},
                    {"attempts", s.attempts},
                    {"done", s.done},
                    {"fields", fields}});
  }
  return nlohmann::json{{"format_version", state_format_version}, {"simulations", sims}}.dump() + "\n";
}

step_log step_log_from_json(const std::string& text) {
  return parsing([&] {
    const auto j = nlohmann::json::parse(text);
    check_version(j);
    std::map<std::uint32_t, step_log::simulation> sims;
    for (const auto& entry : j.at("simulations")) {
      step_log::simulation s;
      const auto sim = entry.at("sim").get<std::uint32_t>();
      s.stored = entry.at("stored").get<std::uint64_t>();
      s.duplicates = entry.at("duplicates").get<std::uint64_t>();
      s.attempts = entry.at("attempts").get<std::set<std::uint32_t>>();
      s.done = entry.at("done").get<bool>();
      std::uint64_t set_bits = 0;
      for (const auto& field : entry.at("fields")) {
        auto bits = hex_to_bits(field.at("bits").get<std::string>(), field.at("steps").get<std::uint32_t>());
        for (bool b : bits) set_bits += b ? 1 : 0;
        s.add_field(std::move(bits));
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
  return nlohmann::json{{"format_version", state_format_version},
                        {"parameters", table.parameters},
                        {"states", states},
                        {"changes", table.changes}}
             .dump() +
         "\n";
}

simulation_table_snapshot simulation_table_from_json(const std::string& text) {
  return parsing([&] {
    const auto j = nlohmann::json::parse(text);
    check_version(j);
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
