// The small checkpoint parts as JSON: the received-steps log (exactly once
// across a restart: a restored log drops the steps it had, stores the rest)
// and the simulation table (parameters bit-exact, states, Breed's changes).
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "actors/checkpoint_keeper/state_files.hpp"

using namespace melissa;
using namespace melissa::checkpoint;

TEST_CASE("received-steps log: round trip keeps bits, counts, attempts, done") {
  step_log log;
  for (std::uint32_t t = 0; t < 13; t += 2) CHECK(log.insert(4, 0, t));
  CHECK(log.insert(4, 1, 12));
  CHECK_FALSE(log.insert(4, 0, 2));  // a duplicate
  log.note_attempt(4, 0);
  log.note_attempt(4, 1);
  log.mark_done(4);
  CHECK(log.insert(9, 0, 0));
  log.note_attempt(9, 2);

  const auto text = step_log_to_json(log);
  const auto back = step_log_from_json(text);
  CHECK(back.total_stored() == log.total_stored());
  CHECK(back.total_stored() == 9);
  CHECK(back.total_duplicates() == 1);
  CHECK(back.done_count() == 1);
  REQUIRE(back.simulations().size() == 2);
  const auto& s4 = back.simulations().at(4);
  CHECK(s4.attempts == std::set<std::uint32_t>{0, 1});
  CHECK(s4.done);
  REQUIRE(s4.field_count() == 2);
  for (std::uint32_t f = 0; f < 2; ++f) CHECK(s4.field_bits(f) == log.simulations().at(4).field_bits(f));
  CHECK(back.simulations().at(9).attempts == std::set<std::uint32_t>{2});
  CHECK(step_log_to_json(back) == text);

  // After a restart the resent steps count once: known ones are dropped.
  auto restored = step_log_from_json(text);
  std::uint32_t stored = 0;
  for (std::uint32_t t = 0; t < 13; ++t) stored += restored.insert(4, 0, t) ? 1 : 0;
  CHECK(stored == 6);  // the odd steps only
  CHECK(restored.total_stored() == 15);
}

TEST_CASE("received-steps log: a file whose count and bits disagree is refused") {
  step_log log;
  log.insert(1, 0, 3);
  auto text = step_log_to_json(log);
  const auto at = text.find("\"stored\":1");
  REQUIRE(at != std::string::npos);
  text.replace(at, 10, "\"stored\":2");
  CHECK_THROWS_WITH(step_log_from_json(text),
                    "checkpoint state: simulation 1: 2 steps stored but 1 bits set");
  CHECK_THROWS_WITH(step_log_from_json("{\"format_version\": 7}"),
                    "checkpoint state: not a version 1 or 2 checkpoint state file");
  CHECK_THROWS_WITH(simulation_table_from_json("{\"format_version\": 2}"),
                    "checkpoint state: not a version 1 checkpoint state file");
  // A series that does not fit its bitset (a bad file) is refused, not indexed past its end.
  CHECK_THROWS_WITH(
      step_log_from_json(R"({"format_version":2,"simulations":[{"sim":0,"stored":4,"duplicates":0,)"
                         R"("attempts":[0],"done":true,"series":[1,6,1,2,4]}]})"),
      "checkpoint state: a series of 4 steps from 1 by 2 does not fit 6 steps");
  CHECK_THROWS_WITH(
      step_log_from_json(R"({"format_version":2,"simulations":[{"sim":0,"stored":5,"duplicates":0,)"
                         R"("attempts":[0],"done":true,"series":[1,8,1,2,4]}]})"),
      "checkpoint state: simulation 0: 5 steps stored but 4 bits set");
  CHECK_THROWS_WITH(
      step_log_from_json(R"({"format_version":2,"simulations":[{"sim":0,"stored":4,"duplicates":0,)"
                         R"("attempts":[0],"done":true,"series":[1,8,1,2]}]})"),
      "checkpoint state: a series is [fields, length, first, stride, count], not [1,8,1,2]");
  CHECK_THROWS_WITH(step_log_from_json("nonsense"), doctest::Contains("checkpoint state: "));
}

TEST_CASE("simulation table: parameters bit-exact, states and changes kept") {
  simulation_table table({{0.1 + 0.2, 5e-324}, {1.0 / 3, -0.0}, {300.0, 450.5}, {1, 2}});
  table.mark_submitted(0);
  table.mark_complete(0);
  table.mark_submitted(1);
  table.mark_failed(2);
  REQUIRE(table.change(3, {7.25, 8.5}));
  const auto text = simulation_table_to_json(table.snapshot());
  const auto back = simulation_table::restore(simulation_table_from_json(text));
  REQUIRE(back.size() == 4);
  CHECK(back.parameters(0) == table.parameters(0));
  CHECK(back.parameters(1)[0] == 1.0 / 3);
  CHECK(back.state(0) == sim_state::complete);
  CHECK(back.state(1) == sim_state::submitted);
  CHECK(back.state(2) == sim_state::failed);
  CHECK(back.state(3) == sim_state::pending);
  CHECK(back.changes(3) == 1);
  CHECK(back.parameters(3) == std::vector<double>{7.25, 8.5});

  auto bad = text;
  bad.replace(bad.find("\"failed\""), 8, "\"broken\"");
  CHECK_THROWS_WITH(simulation_table_from_json(bad),
                    "checkpoint state: unknown simulation state 'broken'");
  CHECK_THROWS_WITH(
      simulation_table_from_json(R"({"format_version":1,"parameters":[[1]],"states":[],"changes":[0]})"),
      "checkpoint state: parameters, states and changes differ in length");
}

TEST_CASE("received-steps log: complete simulations written as series records (issue 16)") {
  // Rank 1 of 3: every third step of each of two fields, as the round robin sends.
  auto fill = [](step_log& log) {
    for (std::uint32_t sim = 0; sim < 4; ++sim) {
      log.note_attempt(sim, 0);
      for (std::uint32_t t = 0; t < 30; ++t)
        if ((sim + t) % 3 == 1 && (sim < 3 || t < 12))  // sim 3 still running
          for (std::uint32_t f = 0; f < 2; ++f) log.insert(sim, f, t);
      if (sim < 3) log.mark_done(sim);
    }
  };
  step_log kept(false), compact;
  fill(kept);
  fill(compact);
  REQUIRE(compact.compacted_count() == 3);
  // A complete simulation is one series record; the running one keeps its bits.
  const auto text = step_log_to_json(compact);
  const auto j = nlohmann::json::parse(text);
  CHECK(j["format_version"] == 2);
  CHECK(j["simulations"][0]["series"] == nlohmann::json::array({2, 29, 1, 3, 10}));
  CHECK_FALSE(j["simulations"][0].contains("fields"));
  CHECK(j["simulations"][3].contains("fields"));
  CHECK(text.size() < step_log_to_json(kept).size());
  // Read back: done simulations compacted again, every step where it was.
  const auto back = step_log_from_json(text);
  CHECK(back.compacted_count() == 3);
  CHECK_FALSE(back.simulations().at(3).compacted());
  CHECK(step_log_to_json(back) == text);
  CHECK(back.total_stored() == kept.total_stored());
  // A version 1 file (every bit spelled out, as before) reads the same.
  auto old_text = step_log_to_json(kept);
  const auto at = old_text.find("\"format_version\":2");
  REQUIRE(at != std::string::npos);
  old_text.replace(at, 18, "\"format_version\":1");
  const auto old_back = step_log_from_json(old_text);
  CHECK(step_log_to_json(old_back) == text);
  for (const auto* log : {&back, &old_back})
    for (std::uint32_t sim = 0; sim < 4; ++sim)
      for (std::uint32_t f = 0; f < 2; ++f)
        for (std::uint32_t t = 0; t < 32; ++t) CHECK(log->contains(sim, f, t) == kept.contains(sim, f, t));
  // After the restart a resent step of a complete simulation is dropped.
  auto restored = step_log_from_json(text);
  CHECK_FALSE(restored.insert(2, 1, 2));  // (2 + 2) % 3 == 1
  CHECK(restored.total_duplicates() == 1);
  CHECK(restored.simulations().at(2).compacted());
}
