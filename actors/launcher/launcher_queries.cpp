#include "actors/launcher/launcher_queries.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa::launcher_detail {

using scheduler::job_kind;

json ok(json j) {
  j["ok"] = true;
  return j;
}

std::string error_reply(const std::string& why) { return json{{"ok", false}, {"error", why}}.dump(); }

json row_to_json(const job_row& r) {
  json j = {{"id", r.id},
            {"kind", scheduler::to_string(r.kind)},
            {"state", scheduler::to_string(r.state)},
            {"raw_state", r.raw_state},
            {"backend_id", r.backend_id},
            {"submitted_at", r.submitted_at},
            {"started_at", r.started_at},
            {"ended_at", r.ended_at}};
  if (r.kind == job_kind::client) {
    j["sim_id"] = r.sim_id;
    j["attempt"] = r.attempt;
    j["parameters"] = r.parameters;
    j["connected"] = r.connected;
  }
  j["exit_code"] = r.exit_code ? json(*r.exit_code) : json(nullptr);
  j["signal"] = r.signal ? json(*r.signal) : json(nullptr);
  if (!r.reason.empty()) j["reason"] = r.reason;
  return j;
}

json status_json(const launcher_state& st) {
  const auto c = st.core->count();
  return {{"ok", true},
          {"study", st.settings.study.study.name},
          {"state", to_string(st.phases.phase())},
          {"elapsed_s", st.settings.elapsed_offset_s + st.now()},
          {"simulations",
           {{"requested", c.requested},
            {"completed", c.completed},
            {"running", c.running},
            {"pending", c.pending},
            {"failed", c.failed},
            {"retries", c.retries}}},
          {"job_limit", st.core->job_limit()},
          {"paused", st.core->paused()},
          {"steps_stored", st.steps()},
          {"steps_per_s", st.steps_per_s},
          {"server_ranks", st.ranks.size()},
          {"output_dir", st.settings.output_dir},
          {"training_tail", in_training_tail(st)},
          {"training", st.tail.figures.known
                           ? json{{"batches", st.tail.figures.batches},
                                  {"train_loss", st.tail.figures.train_loss},
                                  {"samples_per_s", st.tail.figures.samples_per_s},
                                  {"state", st.tail.figures.trainer_state}}
                           : json(nullptr)}};
}

bool in_training_tail(const launcher_state& st) {
  return in_training_tail(st.settings.study.server.sink == config::sink_kind::train,
                          st.phases.phase() == study_phase::running, st.core->count(),
                          st.settings.study.parameters.count);
}

void refresh_tail_figures(launcher_ptr self) {
  auto& st = self->state;
  const auto it = st.ranks.find(0);
  if (st.tail.asking || it == st.ranks.end()) return;
  if (it->second.summary) {  // rank 0 has finished: its final figures
    const auto summary = json::parse(*it->second.summary, nullptr, false);
    if (summary.is_object() && summary.contains("training"))
      read_tail_figures(summary["training"].dump(), st.tail.figures);
    return;
  }
  if (!it->second.coordinator) return;
  st.tail.asking = true;
  self->request(it->second.coordinator, rank_query_timeout, train_atom::value)
      .then([self](const std::string& text) {
              self->state.tail.asking = false;
              read_tail_figures(text, self->state.tail.figures);
            },
            [self](const caf::error&) { self->state.tail.asking = false; });
}

std::string jobs_reply(const launcher_state& st, const std::string& filter) {
  json rows = json::array();
  for (const auto& [id, row] : st.core->table().rows())
    if (filter.empty() || filter == scheduler::to_string(row.state)) rows.push_back(row_to_json(row));
  return ok({{"jobs", rows}}).dump();
}

std::string job_reply(const launcher_state& st, std::uint32_t id) {
  const auto* row = st.core->table().find(id);
  if (!row) return error_reply("no job " + std::to_string(id));
  return ok({{"job", row_to_json(*row)}}).dump();
}

std::optional<std::string> kill_refusal(const launcher_state& st, std::uint32_t id) {
  const auto* row = st.core->table().find(id);
  if (!row) return error_reply("no job " + std::to_string(id));
  if (row->kind == job_kind::server)
    return error_reply("job " + std::to_string(id) + " is the server; use stop");
  if (scheduler::is_final(row->state))
    return error_reply("job " + std::to_string(id) + " already " + scheduler::to_string(row->state));
  return std::nullopt;
}

std::string killed_reply(std::uint32_t id) { return ok({{"killed", id}}).dump(); }

std::string paused_reply(bool paused) { return ok({{"paused", paused}}).dump(); }

std::string stopping_reply() { return ok({{"stopping", true}}).dump(); }

std::string set_setting(launcher_core& core, const std::string& key, const std::string& value) {
  if (key != "job_limit") return error_reply("unknown setting '" + key + "' (settable: job_limit)");
  try {
    std::size_t used = 0;
    const long n = std::stol(value, &used);
    if (used != value.size() || n < 1 || n > 1000000) throw std::invalid_argument(value);
    core.set_job_limit(static_cast<std::uint32_t>(n));
    spdlog::info("job_limit set to {} from melissa-shell", n);
    return ok({{"job_limit", n}}).dump();
  } catch (const std::exception&) {
    return error_reply("job_limit must be an integer >= 1, got '" + value + "'");
  }
}

// --- training queries (melissa-shell train / buffer / steering) ---

namespace {

// A rank's reply as a JSON object; text that is not one becomes {"error": ...}.
json rank_object(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return {{"error", "the rank answered with something that is not a JSON object"}};
  return j;
}

std::string rank_error_text(caf::actor_system& sys, const caf::error& err, std::uint32_t rank) {
  if (err == caf::sec::request_timeout)
    return "server rank " + std::to_string(rank) + " did not answer within " +
           std::to_string(rank_query_timeout.count()) + " s";
  if (err == caf::sec::unexpected_message)
    return "server rank " + std::to_string(rank) + " does not support this query (an older server?)";
  return "server rank " + std::to_string(rank) + " did not answer: " + sys.render(err);
}

// {"ok": true, "state", "elapsed_s", "ranks": [...]} with one object per
// rank (an unanswered rank is {"rank": R, "error": ...}); {"ok": false} when
// no rank has figures (the study does not train: every rank says why).
std::string merge_ranks(const launcher_state& st, std::map<std::uint32_t, json> answers) {
  json ranks = json::array();
  std::vector<std::string> errors;
  for (auto& [rank, j] : answers) {
    j["rank"] = rank;
    if (j.contains("error")) {
      const auto why = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      if (std::find(errors.begin(), errors.end(), why) == errors.end()) errors.push_back(why);
    }
    ranks.push_back(std::move(j));
  }
  const bool any_figures = std::any_of(ranks.begin(), ranks.end(),
                                       [](const json& j) { return !j.contains("error"); });
  if (!any_figures) {
    std::string why;
    for (const auto& e : errors) why += (why.empty() ? "" : "; ") + e;
    return error_reply(why.empty() ? "no server rank answered" : why);
  }
  return ok({{"state", to_string(st.phases.phase())},
             {"elapsed_s", st.settings.elapsed_offset_s + st.now()},
             {"ranks", ranks}})
      .dump();
}

// Asks every registered rank's coordinator `atom` and merges the answers. A
// rank that has finished answers from its summary (its server may be gone):
// `from_summary` picks the part of the summary that answers `atom`.
template <class Atom>
reply_promise ask_ranks(launcher_ptr self, Atom atom, json (*from_summary)(const json& summary)) {
  auto rp = self->make_response_promise<std::string>();
  auto& st = self->state;
  if (st.ranks.empty()) {
    rp.deliver(error_reply(st.phases.before_running()
                               ? "no server rank is up yet (the study is starting)"
                               : "no server rank is up"));
    return rp;
  }
  struct pending {
    std::map<std::uint32_t, json> answers;
    std::size_t waiting = 0;
  };
  auto gathered = std::make_shared<pending>();
  auto done = [self, rp, gathered]() mutable {
    if (gathered->waiting == 0) rp.deliver(merge_ranks(self->state, gathered->answers));
  };
  for (const auto& [rank, link] : st.ranks) {
    if (link.summary || !link.coordinator) {
      const auto summary = link.summary ? json::parse(*link.summary, nullptr, false) : json();
      gathered->answers[rank] = summary.is_object()
                                    ? from_summary(summary)
                                    : json{{"error", "server rank has no coordinator"}};
      continue;
    }
    ++gathered->waiting;
    const auto r = rank;
    self->request(link.coordinator, rank_query_timeout, atom)
        .then(
            [gathered, r, done](const std::string& text) mutable {
              gathered->answers[r] = rank_object(text);
              --gathered->waiting;
              done();
            },
            [self, gathered, r, done](const caf::error& err) mutable {
              gathered->answers[r] = {{"error", rank_error_text(self->system(), err, r)}};
              --gathered->waiting;
              done();
            });
  }
  done();  // every rank answered from its summary
  return rp;
}

json training_from_summary(const json& summary) {
  if (summary.contains("training") && summary["training"].is_object()) return summary["training"];
  return {{"error", "the rank finished without training figures"}};
}

json buffer_from_summary(const json& summary) {
  // The sink's final report; a training buffer's has a policy.
  if (summary.contains("sink") && summary["sink"].is_object() && summary["sink"].contains("policy"))
    return summary["sink"];
  return {{"error", "the rank finished without a training buffer"}};
}

}  // namespace

reply_promise ask_training(launcher_ptr self) {
  return ask_ranks(self, train_atom::value, training_from_summary);
}

json statistics_from_summary(const json& summary) {
  if (summary.contains("sink") && summary["sink"].is_object() &&
      summary["sink"].value("kind", "") == "statistics")
    return summary["sink"];
  return {{"error", "this study does not compute statistics"}};
}

reply_promise ask_statistics(launcher_ptr self) {
  return ask_ranks(self, statistics_atom::value, statistics_from_summary);
}

reply_promise ask_buffer(launcher_ptr self) {
  return ask_ranks(self, buffer_atom::value, buffer_from_summary);
}

// Breed steering lives on rank 0 only: {"ok": true, "steering": {...}}.
reply_promise ask_steering(launcher_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  auto& st = self->state;
  const auto it = st.ranks.find(0);
  if (it == st.ranks.end() || !it->second.coordinator) {
    rp.deliver(error_reply("server rank 0 is not up yet"));
    return rp;
  }
  if (it->second.summary) {
    const auto summary = json::parse(*it->second.summary, nullptr, false);
    if (summary.is_object() && summary.contains("steering") && summary["steering"].is_object()) {
      rp.deliver(ok({{"steering", summary["steering"]}}).dump());
      return rp;
    }
  }
  self->request(it->second.coordinator, rank_query_timeout, steering_atom::value)
      .then(
          [rp](const std::string& text) mutable {
            auto j = rank_object(text);
            if (j.contains("error"))
              rp.deliver(error_reply(j["error"].is_string() ? j["error"].get<std::string>()
                                                            : j["error"].dump()));
            else
              rp.deliver(ok({{"steering", j}}).dump());
          },
          [self, rp](const caf::error& err) mutable {
            rp.deliver(error_reply(err == caf::sec::unexpected_message
                                       ? "this study's server does not report steering"
                                       : rank_error_text(self->system(), err, 0)));
          });
  return rp;
}

// A checkpoint now: rank 0's coordinator has its trainer take it at the next
// step boundary and answers once it is written (a large buffer may take
// longer than rank_query_timeout: the answer then says so, and the
// checkpoint is still written).
reply_promise ask_checkpoint(launcher_ptr self, const std::string& reason) {
  auto rp = self->make_response_promise<std::string>();
  const auto it = self->state.ranks.find(0);
  if (it == self->state.ranks.end() || !it->second.coordinator) {
    rp.deliver(error_reply("server rank 0 is not up yet"));
    return rp;
  }
  self->request(it->second.coordinator, rank_query_timeout, checkpoint_atom::value, reason)
      .then(
          [rp](const std::string& text) mutable {
            auto j = rank_object(text);
            if (!j.contains("path") || !j["path"].is_string()) {
              const auto why = j.contains("error") ? j["error"] : json(text);
              rp.deliver(error_reply(why.is_string() ? why.get<std::string>() : why.dump()));
              return;
            }
            const auto batch = j.value("batch", std::uint64_t{0});
            rp.deliver(ok({{"message", "checkpoint written: " + j["path"].get<std::string>() +
                                           " (batch " + std::to_string(batch) + ")"},
                           {"path", j["path"]},
                           {"batch", batch}})
                           .dump());
          },
          [self, rp](const caf::error& err) mutable {
            rp.deliver(error_reply(err == caf::sec::request_timeout
                                       ? "rank 0 did not answer within " +
                                             std::to_string(rank_query_timeout.count()) +
                                             " s; the checkpoint may still be written (see train)"
                                       : rank_error_text(self->system(), err, 0)));
          });
  return rp;
}

}  // namespace melissa::launcher_detail
