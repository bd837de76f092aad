// Message types, atoms and typed actor interfaces of Melissa-CAF, in one place
// so that a port to CAF 0.18+/1.x (result<R>(A...), mail) touches one file.
//
// THE RULE: every typed interface alias whose handle is held outside the .cpp
// that implements it lives in this file (sink, aggregator, reservoir, trainer,
// steering, coordinator, supervisor, acceptor, launcher, scheduler backend,
// shell endpoint, and the listeners main holds). An actor's header declares
// only its settings and its spawn function; a .cpp declares no interface.
// An actor's interface lists every message it handles, the supervisor's
// restart notice (restart_listener_actor) included.
// Every atom has one meaning (one message shape per receiver kind); a new
// meaning gets a new atom. Whether a handle converts to an interface is
// checked with melissa::converts_to (below), not std::is_convertible: CAF
// 0.17's converting constructor is unconstrained, so std::is_convertible is
// true for any two typed_actor types.
//
// The types here travel between actors of one process only. They carry the
// payload of a time step behind a shared pointer: forwarding a step from the
// client proxy to the aggregator and the sink never copies its values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/detail/type_list.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include "messages/payload.hpp"
#include "messages/wire.hpp"

namespace melissa {

// One time step of one field of one simulation, as received from a client.
struct step_sample {
  std::uint32_t sim_id = 0;
  std::uint32_t attempt = 0;
  std::uint32_t time_step = 0;
  std::uint32_t field_id = 0;
  wire::dtype data_type = wire::dtype::f32;
  std::uint64_t count = 0;  // values in `payload`
  // Global index of the first value: 0 for a whole step (training mode); in
  // statistics mode the start of a slice, or of the rank's owned share once
  // the aggregator has assembled it.
  std::uint64_t offset = 0;
  std::shared_ptr<const payload_bytes> payload;

  const float* f32() const { return reinterpret_cast<const float*>(payload->data()); }
  std::size_t bytes() const { return payload ? payload->size() : 0; }
};

// What the aggregator did with a step: stored it in the sink, or dropped it
// because that (simulation, field, step) had already been stored.
enum class step_outcome : std::uint8_t { stored = 0, duplicate = 1 };

// How a client connection ended, reported by its proxy.
enum class session_end : std::uint8_t { clean = 0, lost = 1, rejected = 2 };

// The aggregator's answer to a hello: open the session, ask again shortly
// (the launcher's ticket notice may still be on its way), or refuse it.
struct session_admission {
  bool accepted = false;
  bool retry = false;
  std::string reason;  // why not, unless accepted
};

}  // namespace melissa

CAF_BEGIN_TYPE_ID_BLOCK(melissa, caf::first_custom_type_id)
  CAF_ADD_ATOM(melissa, melissa, store_atom, "store")
  CAF_ADD_ATOM(melissa, melissa, sim_done_atom, "simDone")
  CAF_ADD_ATOM(melissa, melissa, report_atom, "report")
  CAF_ADD_ATOM(melissa, melissa, opened_atom, "opened")
  CAF_ADD_ATOM(melissa, melissa, closed_atom, "closed")
  CAF_ADD_ATOM(melissa, melissa, tick_atom, "tick")
  CAF_ADD_ATOM(melissa, melissa, stats_atom, "stats")
  CAF_ADD_ATOM(melissa, melissa, restarted_atom, "restarted")
  CAF_ADD_ATOM(melissa, melissa, lookup_atom, "lookup")
  CAF_ADD_ATOM(melissa, melissa, children_atom, "children")
  CAF_ADD_ATOM(melissa, melissa, port_atom, "port")
  // coordinator -> trainer: answer once training has ended (the summary)
  CAF_ADD_ATOM(melissa, melissa, await_training_atom, "awaitTrain")
  // coordinator -> launcher and main: this server rank is done (its summary)
  CAF_ADD_ATOM(melissa, melissa, rank_finished_atom, "rankDone")
  // launcher -> melissa-run's main: the study ended (exit code, message)
  CAF_ADD_ATOM(melissa, melissa, study_finished_atom, "studyDone")
  // launcher queries and commands (melissa-shell)
  CAF_ADD_ATOM(melissa, melissa, shell_atom, "shell")
  CAF_ADD_ATOM(melissa, melissa, status_atom, "status")
  CAF_ADD_ATOM(melissa, melissa, jobs_atom, "jobs")
  CAF_ADD_ATOM(melissa, melissa, job_atom, "job")
  CAF_ADD_ATOM(melissa, melissa, kill_atom, "kill")
  CAF_ADD_ATOM(melissa, melissa, pause_atom, "pause")
  CAF_ADD_ATOM(melissa, melissa, resume_atom, "resume")
  // melissa-shell `set key value`
  CAF_ADD_ATOM(melissa, melissa, set_atom, "set")
  // stop gracefully: melissa-shell `stop` to the launcher, the launcher to
  // every coordinator (finish once no session is open)
  CAF_ADD_ATOM(melissa, melissa, stop_atom, "stop")
  // launcher <-> server, backend
  CAF_ADD_ATOM(melissa, melissa, register_atom, "register")
  // launcher -> scheduler backend: submit a job
  CAF_ADD_ATOM(melissa, melissa, submit_job_atom, "submitJob")
  // server rank 0 -> launcher: run simulation sim with these parameters
  CAF_ADD_ATOM(melissa, melissa, run_sim_atom, "runSim")
  // where submissions stand: Breed -> rank 0's coordinator, which asks the
  // launcher (coordinator -> launcher: highest id, job limit)
  CAF_ADD_ATOM(melissa, melissa, submissions_atom, "submitted")
  // new parameters for a simulation not yet submitted: Breed -> rank 0's
  // coordinator (numbers), which tells the launcher (text) and the buffer
  CAF_ADD_ATOM(melissa, melissa, set_params_atom, "setParams")
  // Breed -> rank 0's coordinator: the current parameters of a simulation
  CAF_ADD_ATOM(melissa, melissa, parameters_atom, "params")
  // rank 0's coordinator -> Breed's steering: the owner of the simulation table
  CAF_ADD_ATOM(melissa, melissa, owner_atom, "owner")
  CAF_ADD_ATOM(melissa, melissa, timeout_atom, "timeout")
  CAF_ADD_ATOM(melissa, melissa, progress_atom, "progress")
  CAF_ADD_ATOM(melissa, melissa, sim_failed_atom, "simFailed")
  CAF_ADD_ATOM(melissa, melissa, poll_atom, "poll")
  // launcher -> scheduler backend: cancel a job
  CAF_ADD_ATOM(melissa, melissa, cancel_atom, "cancel")
  // melissa-run's main -> launcher: a signal interrupts the study (exit code, why)
  CAF_ADD_ATOM(melissa, melissa, interrupt_atom, "interrupt")
  // a server rank cannot go on, its sink cannot write (disk full, I/O error):
  // dataset sink -> main (why), main -> launcher (rank, why)
  CAF_ADD_ATOM(melissa, melissa, sink_failed_atom, "sinkFailed")
  CAF_ADD_ATOM(melissa, melissa, activity_atom, "activity")
  // training: reservoir <-> trainer, shell queries, steering
  CAF_ADD_ATOM(melissa, melissa, batch_atom, "batch")
  CAF_ADD_ATOM(melissa, melissa, production_over_atom, "prodOver")
  CAF_ADD_ATOM(melissa, melissa, buffer_atom, "buffer")
  CAF_ADD_ATOM(melissa, melissa, train_atom, "train")
  // the steering's status JSON (melissa-shell `steering`, the summary)
  CAF_ADD_ATOM(melissa, melissa, steering_atom, "steering")
  CAF_ADD_ATOM(melissa, melissa, statistics_atom, "statistics")
  // the submission view (k, m, count) to the steering: resample now
  CAF_ADD_ATOM(melissa, melissa, resample_atom, "resample")
  CAF_ADD_ATOM(melissa, melissa, losses_atom, "losses")
  CAF_ADD_ATOM(melissa, melissa, next_atom, "next")
  // session tickets (launcher -> every server rank) and completed simulations
  CAF_ADD_ATOM(melissa, melissa, ticket_atom, "ticket")
  CAF_ADD_ATOM(melissa, melissa, revoke_atom, "revoke")
  CAF_ADD_ATOM(melissa, melissa, complete_atom, "complete")
  // checkpoints (issue 11, docs/checkpoints.md): launcher -> rank 0's
  // coordinator, take one now (reason); a restored server's rank 0 -> the
  // launcher, which checkpoint it restored and which simulations it holds complete
  CAF_ADD_ATOM(melissa, melissa, checkpoint_atom, "checkpoint")
  CAF_ADD_ATOM(melissa, melissa, restored_atom, "restored")
  // launcher -> scheduler backend: submit many jobs at once (Slurm job arrays)
  CAF_ADD_ATOM(melissa, melissa, submit_jobs_atom, "submitJobs")
CAF_END_TYPE_ID_BLOCK(melissa)

// Process-local types: never serialized (the wire protocol is ours, in wire.hpp).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::step_sample)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::step_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::session_end)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::session_admission)

namespace melissa {

// Counters a server rank reports (progress lines and the summary).
struct ingest_stats {
  std::uint64_t steps_stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t bytes_stored = 0;
  std::uint32_t simulations_done = 0;
  std::uint32_t simulations_seen = 0;
};

}  // namespace melissa

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::ingest_stats)

namespace melissa {

// A simulation's latest session as the aggregator saw it (for client timeouts).
struct sim_activity {
  std::uint32_t sim_id = 0;
  std::uint32_t attempt = 0;   // the latest attempt that opened a session
  bool open = false;           // that session is still open
  double idle_s = 0;           // seconds since its last step (or since it opened)
  bool complete = false;       // every step this rank expects is stored and a session ended cleanly
};

}  // namespace melissa

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<melissa::sim_activity>)

namespace melissa {

// A supervisor's restart notice: (restarted_atom, child's name, its new
// handle), sent to every child that lists the restarted one in depends_on
// (actors/supervisor). Every such dependent's interface includes this one;
// the handle is cast once, in the handler, to the sibling's interface.
using restart_listener_actor =
    caf::typed_actor<caf::reacts_to<restarted_atom, std::string, caf::actor>>;

// Where stored steps go: the counting/checksum sink (actors/counting_sink),
// the dataset writer (actors/dataset_sink) and, with server.sink = "train",
// the training buffer (actors/reservoir: reservoir_actor extends this
// interface with batch_atom and buffer_atom).
using sink_actor = caf::typed_actor<
    // Store one step; the reply comes once it is stored (this is what paces
    // the credits returned to the client, so a slow sink slows the clients).
    caf::replies_to<store_atom, step_sample>::with<bool>,
    // Every step of this simulation has been delivered (its client ended cleanly).
    caf::replies_to<sim_done_atom, std::uint32_t>::with<bool>,
    // Every expected simulation has ended: no more steps will come (a training
    // buffer lifts its watermark and lets the trainer drain it).
    caf::reacts_to<production_over_atom>,
    // A JSON object with what the sink knows (checksums, files written).
    caf::replies_to<report_atom>::with<std::string>>;

// Deduplicates steps (exactly once per (simulation, field, step)) and forwards
// new ones to the sink; hears the sink's restart.
using aggregator_actor = restart_listener_actor::extend<
    caf::replies_to<step_sample>::with<step_outcome>,
    // A proxy asks to open the session of (sim, attempt) with the client's
    // ticket; accepted, the session counts as open.
    caf::replies_to<opened_atom, std::uint32_t, std::uint32_t, std::string>::with<session_admission>,
    // A proxy closed the session of (sim, attempt). The reply is empty, or
    // for a clean end that leaves steps missing, why the simulation is not
    // complete (sent to the client as an error frame).
    caf::replies_to<closed_atom, std::uint32_t, std::uint32_t, session_end>::with<std::string>,
    // The launcher started (sim, attempt) with this ticket / its job ended.
    caf::reacts_to<ticket_atom, std::uint32_t, std::uint32_t, std::string>,
    caf::reacts_to<revoke_atom, std::uint32_t, std::uint32_t>,
    caf::replies_to<stats_atom>::with<ingest_stats>,
    caf::replies_to<activity_atom>::with<std::vector<sim_activity>>,
    // A JSON object per simulation: steps, duplicates, attempts.
    caf::replies_to<report_atom>::with<std::string>>;

}  // namespace melissa

namespace melissa {

// What melissa-shell (through the shell endpoint) asks the launcher. Every
// answer is a JSON text, so that it crosses the CAF middleman as a plain
// string: {"ok": true, ...} or {"ok": false, "error": "..."}.
using launcher_query_actor = caf::typed_actor<
    caf::replies_to<status_atom>::with<std::string>,
    caf::replies_to<jobs_atom, std::string>::with<std::string>,        // state filter ("" = all)
    caf::replies_to<job_atom, std::uint32_t>::with<std::string>,       // job id
    caf::replies_to<kill_atom, std::uint32_t>::with<std::string>,      // job id
    caf::replies_to<pause_atom>::with<std::string>,
    caf::replies_to<resume_atom>::with<std::string>,
    caf::replies_to<set_atom, std::string, std::string>::with<std::string>,  // key, value
    caf::replies_to<stop_atom>::with<std::string>,
    // Training, from every server rank's coordinator: {"ok": true, "ranks":
    // [{rank's trainer status}, ...]} / {"ok": true, "ranks": [{rank's
    // training buffer}, ...]}; {"ok": false, ...} when no rank is up or the
    // study does not train. docs/shell.md has the fields.
    caf::replies_to<train_atom>::with<std::string>,
    caf::replies_to<buffer_atom>::with<std::string>,
    // Breed steering, from rank 0: {"ok": true, "steering": {...}}.
    caf::replies_to<steering_atom>::with<std::string>,
    // Statistics mode, from every rank's statistics sink: {"ok": true, "ranks": [...]}.
    caf::replies_to<statistics_atom>::with<std::string>,
    // A checkpoint now (reason "shell"), from rank 0: {"ok": true, "message",
    // "path", "batch"} once written (docs/checkpoints.md).
    caf::replies_to<checkpoint_atom, std::string>::with<std::string>>;

// The published shell endpoint: (shell_atom, token, command line) -> JSON text.
using shell_endpoint_actor =
    caf::typed_actor<caf::replies_to<shell_atom, std::string, std::string>::with<std::string>>;

}  // namespace melissa

namespace melissa {

// What the launcher uses of a server rank's coordinator (sent with
// register_atom, so it crosses the middleman: add_remote_message_types).
using server_rank_actor = caf::typed_actor<
    // (sim, attempt) started with this ticket / its job ended: passed on to
    // the aggregator (session_tickets.hpp).
    caf::reacts_to<ticket_atom, std::uint32_t, std::uint32_t, std::string>,
    caf::reacts_to<revoke_atom, std::uint32_t, std::uint32_t>,
    // The launcher gave up on simulation `sim` (max_retries exhausted).
    caf::reacts_to<sim_failed_atom, std::uint32_t>,
    // Finish once no session has been open for min(client_timeout, 30 s).
    caf::reacts_to<stop_atom>,
    // melissa-shell through the launcher: the trainer's status, the training
    // buffer's figures, Breed's status (JSON; {"error": ...} when absent).
    caf::replies_to<train_atom>::with<std::string>,
    caf::replies_to<buffer_atom>::with<std::string>,
    caf::replies_to<steering_atom>::with<std::string>,
    // The statistics sink's report (statistics mode; JSON, {"error": ...} otherwise).
    caf::replies_to<statistics_atom>::with<std::string>,
    // Rank 0 only: take a checkpoint of every rank now (reason: "shell",
    // "interrupt", ...), answer once it is committed: JSON {"path", "batch"},
    // or {"error": why} (no training, checkpoints off, not rank 0, failed).
    caf::replies_to<checkpoint_atom, std::string>::with<std::string>>;

}  // namespace melissa

namespace melissa {

// What a server rank tells the launcher (published by melissa-run, reached by
// melissa-server with io::remote_actor). Strings and integers only.
using launcher_server_actor = caf::typed_actor<
    // A server rank is up: its rank, the address clients use, and its
    // coordinator (the part the launcher uses). Reply: "ok" or why not.
    caf::replies_to<register_atom, std::uint32_t, std::string, server_rank_actor>::with<std::string>,
    // Rank 0 asks for simulation `sim` with these parameters (command-line text).
    caf::reacts_to<run_sim_atom, std::uint32_t, std::string>,
    // Rank 0's coordinator (for Breed) asks where submissions stand: (the
    // highest simulation id submitted so far, the job limit).
    caf::replies_to<submissions_atom>::with<std::uint32_t, std::uint32_t>,
    // Rank 0's coordinator (for Breed) changes the parameters of simulations
    // not yet submitted, one resampling in one message: sim ids and their
    // parameters (command-line text), same length. Reply: the ids changed;
    // the others were submitted meanwhile (kept) or had bad parameters.
    caf::replies_to<set_params_atom, std::vector<std::uint32_t>,
                    std::vector<std::string>>::with<std::vector<std::uint32_t>>,
    // The session of (sim, attempt) opened on a server rank.
    caf::reacts_to<opened_atom, std::uint32_t, std::uint32_t>,
    // Server rank `rank` has every step of simulation `sim` it expects and a
    // clean end: once every rank says so, the simulation is complete.
    caf::reacts_to<complete_atom, std::uint32_t, std::uint32_t>,
    // (sim, attempt) sent nothing for client_timeout: kill and restart it.
    caf::reacts_to<timeout_atom, std::uint32_t, std::uint32_t>,
    // rank, steps stored, duplicates, bytes stored (progress line)
    caf::reacts_to<progress_atom, std::uint32_t, std::uint64_t, std::uint64_t, std::uint64_t>,
    // rank, the rank's summary JSON: every expected simulation ended.
    caf::reacts_to<rank_finished_atom, std::uint32_t, std::string>,
    // rank, why: the rank cannot go on (its sink cannot write: disk full, I/O
    // error). The study stops with this message; no simulation is blamed.
    caf::reacts_to<sink_failed_atom, std::uint32_t, std::string>,
    // Rank 0 of a server started with --restore: the checkpoint directory it
    // restored, that checkpoint's batch, and the simulations complete in it
    // (never to be rerun). Sent after every rank registered, before any run_sim.
    caf::reacts_to<restored_atom, std::string, std::uint64_t, std::vector<std::uint32_t>>>;

using launcher_actor = launcher_query_actor::extend_with<launcher_server_actor>;

}  // namespace melissa

#include "messages/training_batch.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::training_batch_ptr)

namespace melissa::scheduler {
struct job_request;  // backends/scheduler/backend.hpp
struct job_status;
}  // namespace melissa::scheduler

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::scheduler::job_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<melissa::scheduler::job_status>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<melissa::scheduler::job_request>)

namespace melissa {

// True when a handle of type From can be assigned to a handle of type To
// (To's signatures are a subset of From's). Use it in static_asserts at the
// wiring sites; std::is_convertible cannot tell (see the rule at the top).
template <class From, class To>
struct converts_to;
template <class... Fs, class... Ts>
struct converts_to<caf::typed_actor<Fs...>, caf::typed_actor<Ts...>>
    : std::integral_constant<bool, caf::detail::tl_subset_of<caf::detail::type_list<Ts...>,
                                                             caf::detail::type_list<Fs...>>::value> {};
template <class From, class To>
inline constexpr bool converts_to_v = converts_to<From, To>::value;

// --- melissa-server -------------------------------------------------------

// The supervisor: (lookup_atom, name) -> the child's current handle (cast it
// once, at the wiring site, to the child's interface); (children_atom) ->
// names of the live children, in start order.
using supervisor_actor = caf::typed_actor<
    caf::replies_to<lookup_atom, std::string>::with<caf::actor>,
    caf::replies_to<children_atom>::with<std::vector<std::string>>>;

// The training buffer (actors/reservoir): a sink the trainer asks for
// batches. sink_actor's production_over lifts the threshold and lets the
// buffer drain.
using reservoir_actor = sink_actor::extend<
    // A batch of at most n samples. The reply is delayed until a batch can be
    // drawn; once production is over and the buffer is empty, the reply is a
    // batch with `last` set (size 0): training ends. n = 0 is an error.
    caf::replies_to<batch_atom, std::uint32_t>::with<training_batch_ptr>,
    // JSON: policy, capacity, threshold, population, unseen, inserts, evictions,
    // batches, samples_drawn, pending stores/batches, repetition histogram.
    caf::replies_to<buffer_atom>::with<std::string>,
    // Rank 0's coordinator: Breed changed the parameters of a simulation not
    // yet submitted; its steps are encoded with these.
    caf::reacts_to<set_params_atom, std::uint32_t, std::vector<double>>,
    // The trainer took a checkpoint while its batch request waits here: the
    // buffer's cut now (reservoir_settings::at_batch_request).
    caf::reacts_to<checkpoint_atom>>;

// What Breed's steering uses of rank 0's coordinator, the owner of the
// simulation table (actors/coordinator/simulation_table.hpp) and the only
// path to the launcher.
using simulation_owner_actor = caf::typed_actor<
    // Where submissions stand: (k the highest simulation id submitted, m the
    // job limit, count the simulations of the design), from the launcher.
    caf::replies_to<submissions_atom>::with<std::uint32_t, std::uint32_t, std::uint32_t>,
    // New parameters for simulations (one resampling: ids and values, same
    // length), passed to the launcher in one message. Reply: the ids changed
    // (the launcher and the training buffer have them); the others are not in
    // the design or have been submitted meanwhile (kept).
    caf::replies_to<set_params_atom, std::vector<std::uint32_t>,
                    std::vector<std::vector<double>>>::with<std::vector<std::uint32_t>>,
    // The current parameters of `sim` (an error outside the design).
    caf::replies_to<parameters_atom, std::uint32_t>::with<std::vector<double>>>;

// Breed's steering actor (actors/steering, server rank 0).
using steering_actor = caf::typed_actor<
    // One training batch: sim ids, time steps and losses of its samples (same
    // length), then the batch's loss mean and standard deviation. Every
    // `period` such messages the actor resamples.
    caf::reacts_to<losses_atom, std::vector<std::uint32_t>, std::vector<std::uint32_t>,
                   std::vector<float>, double, double>,
    // Simulation `sim` completed and the training buffer received `steps`
    // distinct time steps of it: it joins the population (with its parameters,
    // settings.parameters_of or the owner) once the trainer has seen them all.
    caf::reacts_to<sim_done_atom, std::uint32_t, std::uint32_t>,
    // The submission view (k highest submitted id, m job limit, count):
    // resample now with it.
    caf::reacts_to<resample_atom, std::uint32_t, std::uint32_t, std::uint32_t>,
    // Status JSON for melissa-shell: r, sigma per member, resamplings,
    // resampled simulations, last resampling time, provenance table.
    caf::replies_to<steering_atom>::with<std::string>,
    // Rank 0's coordinator (again after a restart of either): from now on
    // submissions, parameters and changes go through it (steering.hpp).
    caf::reacts_to<owner_atom, simulation_owner_actor>>;

// The trainer (actors/trainer). It depends on the buffer ("sink") and the
// steering: restart notices give it their new handles.
using trainer_actor = restart_listener_actor::extend<
    // Internal: take the next step.
    caf::reacts_to<next_atom>,
    // Live status JSON: batches, samples, losses, throughput, waiting, learning rate.
    caf::replies_to<train_atom>::with<std::string>,
    // Answered once training has ended (at once if it has): the training summary JSON.
    caf::replies_to<await_training_atom>::with<std::string>,
    // A checkpoint now (reason), taken at the next step boundary; answered
    // once written: JSON {"path", "batch"} or {"error": why}.
    caf::replies_to<checkpoint_atom, std::string>::with<std::string>,
    // Internal: looks whether the checkpoints asked for are written.
    caf::reacts_to<tick_atom>>;

// A typed view of the client acceptor (actors/client_acceptor: an untyped
// actor, cast once by spawn_client_acceptor): its bound port, and the
// aggregator's restart, which it passes on to its live proxies.
using acceptor_actor = restart_listener_actor::extend<
    caf::replies_to<port_atom>::with<std::uint16_t>>;

// Who hears that a server rank is done: main's scoped actor, (rank_finished_atom, summary).
using rank_listener_actor = caf::typed_actor<caf::reacts_to<rank_finished_atom, std::string>>;

// Who hears that the dataset sink cannot write: main's scoped actor,
// (sink_failed_atom, why); it tells the launcher, which stops the study.
using sink_failure_listener_actor =
    caf::typed_actor<caf::reacts_to<sink_failed_atom, std::string>>;

// The coordinator (actors/coordinator): what the launcher uses, plus its
// tick, its summary (report_atom -> JSON, also written to summary_path) and
// the restart notices of the aggregator, sink, trainer and steering; on rank 0
// it owns the simulation table and answers Breed (simulation_owner_actor).
using coordinator_actor = server_rank_actor::extend_with<restart_listener_actor>::extend_with<
    simulation_owner_actor>::extend<
    caf::reacts_to<tick_atom>, caf::replies_to<report_atom>::with<std::string>>;

// --- melissa-run ----------------------------------------------------------

// The scheduler backend (actors/scheduler_backend). submit: the backend's job
// id, or an error whose context holds the user message.
using backend_actor = caf::typed_actor<
    caf::replies_to<submit_job_atom, scheduler::job_request>::with<std::string>,
    // submit many: one id or one error text per request, in order (errors[i]
    // empty when ids[i] is set)
    caf::replies_to<submit_jobs_atom, std::vector<scheduler::job_request>>::with<
        std::vector<std::string>, std::vector<std::string>>,
    caf::replies_to<poll_atom, std::vector<std::string>>::with<std::vector<scheduler::job_status>>,
    caf::replies_to<cancel_atom, std::string>::with<bool>>;

// Who hears that the study ended: melissa-run's scoped actor,
// (study_finished_atom, exit code, message).
using study_listener_actor =
    caf::typed_actor<caf::reacts_to<study_finished_atom, std::int32_t, std::string>>;

// The launcher as its spawner sees it (actors/launcher): the published
// interface plus (port_atom, port) to start once published, its tick,
// (interrupt_atom, exit code, why) to interrupt it, and the backend's restart.
using launcher_impl_actor = launcher_actor::extend_with<restart_listener_actor>::extend<
    caf::reacts_to<port_atom, std::uint16_t>, caf::reacts_to<tick_atom>,
    caf::reacts_to<interrupt_atom, std::int32_t, std::string>>;

// Types that cross the middleman besides CAF's own: both melissa-run and
// melissa-server call this on their actor_system_config.
inline void add_remote_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<server_rank_actor>("melissa::server_rank_actor");
  // Breed's batch of parameter changes and its reply (set_params_atom).
  cfg.add_message_type<std::vector<std::uint32_t>>("std::vector<std::uint32_t>");
}

}  // namespace melissa
