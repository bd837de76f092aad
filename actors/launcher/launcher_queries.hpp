// Internal to the launcher actor: its answers to melissa-shell (through the
// shell endpoint) and the JSON it renders for them and for summary.json.
// The study's life (jobs, phases, the end) stays in launcher.cpp; what is
// here reads the launcher's state, asks the server ranks, and renders.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include "actors/launcher/job_table.hpp"
#include "actors/launcher/launcher_state.hpp"

namespace melissa::launcher_detail {

using json = nlohmann::json;
using reply_promise = caf::typed_response_promise<std::string>;

// The timeouts of one shell query, outermost first; each waits longer than
// the one inside it, so that the innermost silent actor is the one named in
// the answer instead of an outer wait firing first with a vaguer message:
//   melissa-shell -> endpoint   max(30 s, 2 x --timeout)  apps/melissa-shell/main.cpp
//   endpoint -> launcher        20 s   shell_endpoint.hpp default_launcher_timeout
//   launcher -> server rank     15 s   rank_query_timeout (here)
//   coordinator -> its child    10 s trainer/buffer, 5 s steering
//                                      actors/coordinator/coordinator.cpp ask_child
// so the coordinator's waits must stay below 15 s, and this one below 20 s
// (docs/architecture.md, "Timeouts and intervals").
inline constexpr auto rank_query_timeout = std::chrono::seconds(15);

// {"ok": true, ...j}; {"ok": false, "error": why} as text.
json ok(json j = json::object());
std::string error_reply(const std::string& why);

// One row of the job table as `jobs`, `job` and summary.json show it.
json row_to_json(const job_row& r);
// `status`: the study's phase and counts (also the head of summary.json).
json status_json(const launcher_state& st);

// `jobs [state]`, `job ID`.
std::string jobs_reply(const launcher_state& st, const std::string& filter);
std::string job_reply(const launcher_state& st, std::uint32_t id);
// `kill ID`: the refusal (no such job, the server, already ended), or
// nothing when the job may be killed; then killed_reply.
std::optional<std::string> kill_refusal(const launcher_state& st, std::uint32_t id);
std::string killed_reply(std::uint32_t id);
// `pause` / `resume`, `stop`.
std::string paused_reply(bool paused);
std::string stopping_reply();
// `set KEY VALUE`: only job_limit is settable; sets it in `core`.
std::string set_setting(launcher_core& core, const std::string& key, const std::string& value);

// `train`, `buffer`: every rank's answer merged ({"ok", "state",
// "elapsed_s", "ranks": [...]}); a finished rank answers from its summary.
reply_promise ask_training(launcher_ptr self);
reply_promise ask_buffer(launcher_ptr self);
// The training tail (training_tail.hpp): whether the study is in it, and a
// refresh of rank 0's figures (one request at a time; the answer lands in
// st.tail.figures for the next progress line and status).
bool in_training_tail(const launcher_state& st);
void refresh_tail_figures(launcher_ptr self);

// melissa-shell stats: each rank's statistics sink (statistics mode).
reply_promise ask_statistics(launcher_ptr self);
// `steering`: rank 0's ({"ok": true, "steering": {...}}).
reply_promise ask_steering(launcher_ptr self);
// `checkpoint`: rank 0 takes one now ({"ok": true, "message", "path", "batch"}).
reply_promise ask_checkpoint(launcher_ptr self, const std::string& reason);

}  // namespace melissa::launcher_detail
