#include "actors/monitor/archive_source.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace melissa::monitor {
namespace {

using json = nlohmann::json;

std::string refused(const std::string& why) { return json{{"ok", false}, {"error", why}}.dump(); }

class archive_source final : public study_source {
 public:
  explicit archive_source(json summary) : summary_(std::move(summary)) {}

  bool live() const override { return false; }

  std::string status() override {
    json j = summary_;
    for (const char* bulky : {"jobs", "server", "training", "steering"}) j.erase(bulky);
    j["ok"] = true;
    return j.dump();
  }
  std::string jobs(const std::string& filter) override {
    json rows = json::array();
    for (const auto& row : summary_.value("jobs", json::array()))
      if (filter.empty() || row.value("state", "") == filter) rows.push_back(row);
    return json{{"ok", true}, {"jobs", rows}}.dump();
  }
  std::string job(std::uint32_t id) override {
    for (const auto& row : summary_.value("jobs", json::array()))
      if (row.value("id", 0u) == id) return json{{"ok", true}, {"job", row}}.dump();
    return refused("no job " + std::to_string(id));
  }
  std::string kill(std::uint32_t) override { return refused("the study has ended"); }
  std::string pause() override { return refused("the study has ended"); }
  std::string resume() override { return refused("the study has ended"); }
  std::string set(const std::string&, const std::string&) override {
    return refused("the study has ended");
  }
  // Each rank's final figures, as a live rank that has finished answers.
  std::string training() override { return ranks("training", "the study did not train"); }
  std::string buffer() override { return ranks("sink", "this study had no training buffer"); }
  std::string steering() override {
    if (summary_.contains("steering") && summary_["steering"].is_object())
      return json{{"ok", true}, {"steering", summary_["steering"]}}.dump();
    return refused("this study does not steer (no [breed] section)");
  }

 private:
  std::string ranks(const char* key, const char* none) {
    json out = json::array();
    for (const auto& rank : summary_.value("server", json::array())) {
      if (!rank.is_object() || !rank.contains(key) || !rank[key].is_object()) continue;
      if (std::string(key) == "sink" && !rank[key].contains("policy")) continue;
      auto figures = rank[key];
      figures["rank"] = rank.value("rank", 0u);
      out.push_back(std::move(figures));
    }
    if (out.empty()) return refused(none);
    return json{{"ok", true}, {"state", "done"}, {"elapsed_s", summary_.value("elapsed_s", 0.0)},
                {"ranks", out}}
        .dump();
  }

  json summary_;
};

}  // namespace

std::shared_ptr<study_source> make_archive_source(const std::string& output_dir) {
  const auto path = output_dir + "/summary.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path + " (has the study ended?)");
  std::stringstream text;
  text << in.rdbuf();
  auto summary = json::parse(text.str(), nullptr, false);
  if (summary.is_discarded() || !summary.is_object() || !summary.contains("jobs"))
    throw std::runtime_error(path + " is not a study summary (no \"jobs\")");
  return std::make_shared<archive_source>(std::move(summary));
}

}  // namespace melissa::monitor
