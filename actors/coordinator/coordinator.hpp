// The coordinator of one server rank: it polls the aggregator, logs
// progress lines (steps stored, duplicates, throughput), notices the end of
// the study (every expected simulation ended cleanly) and writes the rank's
// summary JSON. Under a launcher it is also the rank's launcher-facing side:
// it registers the rank, asks for the simulations of the design (rank 0),
// reports sessions, silent clients and progress, and answers melissa-shell's
// train / buffer / steering queries (docs/architecture.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/coordinator/simulation_table.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct coordinator_settings {
  std::uint32_t rank = 0;
  std::uint32_t expected_simulations = 0;  // 0: run until stopped
  std::string summary_path;                // written at the end (and on report_atom)
  std::string provenance_path;             // with steering: Breed's provenance CSV
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds progress_interval{2000};
  // Under a launcher: the host clients use to reach this rank (the port
  // comes from the client acceptor), the design (rank 0's simulation table
  // starts from it and asks the launcher to run simulation i with design[i])
  // and the client timeout (seconds without a step).
  std::string host;
  std::vector<std::vector<double>> design;
  double client_timeout = 300;
  // --restore (rank 0 under a launcher): the checkpoint restored, its batch,
  // its simulation table (the design when it has none) and the simulations
  // complete in it. Once registered, rank 0 sends (restored_atom, dir, batch,
  // complete) to the launcher, then run_sim for every simulation neither
  // complete nor failed in the table: complete ones are never rerun.
  std::string restored_dir;
  std::uint64_t restored_batch = 0;
  std::optional<simulation_table_snapshot> restored_table;
  std::vector<std::uint32_t> restored_complete;
  // --restore, every rank: the simulations done in this rank's restored
  // received steps; they count as ended (never rerun, no session comes).
  std::vector<std::uint32_t> restored_done;
  // --restore, rank 0: the study's elapsed seconds in the checkpoint
  // (study/study_state.json); the summary's elapsed_s counts on from it.
  double elapsed_offset_s = 0;
  // Rank 0 under a launcher: called with the table each time it changes (the
  // checkpoints' copy, read by the trainer's thread).
  std::function<void(const simulation_table_snapshot&)> publish_table;
  // Statistics mode: the sink takes the checkpoints (checkpoint_atom goes to
  // it when there is no trainer; docs/checkpoints.md, "Statistics mode").
  bool sink_checkpoints = false;
};

// coordinator_actor (messages/actor_types.hpp): (report_atom) -> the summary
// JSON, also written to summary_path.
// Under a launcher it reports each simulation this rank holds complete
// (complete_atom, rank, sim): the launcher counts a simulation complete only
// once every rank has, whatever its job's exit status says.
// From the launcher: (sim_failed_atom, sim) the launcher gave up on it;
// (stop_atom) finish once no session has been open for min(client_timeout,
// 30 s) (running clients may still connect). A lost launcher does the same.
// When the study ends it sends (rank_finished_atom, summary JSON) to
// `listener` and (rank_finished_atom, rank, summary JSON) to the launcher.
// It registers itself with the launcher as a server_rank_actor.
// `launcher` may be invalid (standalone server); with a launcher, `acceptor`
// gives the port this rank registers (port_atom). With a `trainer` (a
// trainer_actor; the sink is then its training buffer) the end of the study
// waits for training: the sink hears production_over, the trainer drains it,
// and the trainer's summary joins this rank's summary under "training".
// Rank 0 under a launcher owns the simulation table (simulation_table.hpp):
// it asks the launcher for every simulation of the design once registered,
// tracks their states (sessions opened, complete, failed) and is Breed's only
// path to the launcher (simulation_owner_actor): (submissions_atom) -> (k, m,
// count), (set_params_atom, sims, values) -> the ids changed (one message
// per resampling to the launcher; then the training buffer gets the accepted
// changes), (parameters_atom, sim) -> values.
// It introduces itself to the steering with (owner_atom, handle), again after
// a restart of the steering; a restarted training buffer gets every changed row.
// With `steering` (Breed, rank 0) its status answers melissa-shell `steering`,
// joins the summary under "steering", and its provenance table is written to
// <output>/breed-provenance.csv at the end.
coordinator_actor spawn_coordinator(caf::actor_system& sys, coordinator_settings settings,
                                    aggregator_actor aggregator, sink_actor sink,
                                    rank_listener_actor listener, acceptor_actor acceptor = {},
                                    launcher_server_actor launcher = {},
                                    trainer_actor trainer = {}, steering_actor steering = {});

}  // namespace melissa
