// The reservoir actor (one per server rank): the training buffer between the
// aggregator and the trainer. It is a sink (the aggregator stores steps in
// it) that the trainer asks for batches.
//
// Flow control: the reply to a store is delayed while the buffer cannot take
// the sample (FIFO/FIRO full, Reservoir full of unseen samples). The
// aggregator's reply to the client proxy waits on it, so the server stops
// granting credit and the client's send blocks: nothing is dropped. Pending
// stores complete, in arrival order, as draws free space; pending batch
// requests are answered as stores or production_over make a batch available.
//
// A stored step becomes a training sample through sample_assembler
// (sample_assembler.hpp); a step it cannot read, or that the buffer refuses
// (rows of another length than the first sample's), is an error reply. The
// step's size and dtype are not checked again here: client_session checks
// them against the study where the step enters the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/aggregator/step_log.hpp"
#include "actors/reservoir/training_buffer.hpp"
#include "messages/actor_types.hpp"
#include "messages/sample_encoding.hpp"

namespace melissa {

// reservoir_actor (sink_actor plus batch_atom and buffer_atom) is in
// messages/actor_types.hpp.

// What a restored rank's buffer starts from (reservoir_settings::restored).
struct restored_buffer {
  std::unique_ptr<training_buffer> buffer;  // null: the checkpoint holds no buffer part
  std::vector<training_sample> pending;     // stores that waited for room, in arrival order
  step_log received;
  std::atomic<bool> taken{false};
};

struct reservoir_settings {
  buffer_settings buffer;
  // The field whose steps become training targets; other fields' steps are
  // acknowledged and ignored.
  std::uint32_t field_id = 0;
  sample_encoder encoder;
  // The parameters of simulation `sim` (encoder.lo.size() values). Called once
  // per simulation (cached until its sim_done); may throw for an unknown sim,
  // which fails that store. Rank 0's coordinator sends Breed's changes
  // (set_params_atom, sim, values); those take precedence.
  std::function<std::vector<double>(std::uint32_t sim)> parameters_of;
  // Called when a simulation has delivered all its steps (may be empty), with
  // the number of distinct time steps of the training field received from it:
  // Breed's steering counts it as completed, and as a population member once
  // the trainer has seen that many of its steps.
  std::function<void(std::uint32_t sim, std::uint32_t steps)> on_sim_done;
  // Called on the buffer's thread when a batch request arrives, before
  // anything is drawn for it (may be empty): the checkpoint keeper takes the
  // buffer's cut there, at the trainer's step boundary. The cut is the
  // buffer's snapshot with the stores it holds pending (snapshot, called
  // only if wanted: it copies the samples' inputs) and the steps the buffer
  // has received (`received`: every step stored, pending or acknowledged as
  // another field's, so a step in it is in the snapshot: the received-steps
  // part of a checkpoint). Also called once when production is over
  // (production_over: the end-of-training checkpoint's received steps).
  std::function<void(const std::function<buffer_snapshot()>& snapshot, const step_log& received,
                     bool production_over)>
      at_batch_request;
  // A checkpoint's part to start from (--restore): the buffer is the
  // restored one (its pending stores queued again, with no one waiting for
  // their reply) and its received steps that log. Taken by the first spawn only
  // (a buffer restarted by its supervisor starts empty, as without restore).
  std::shared_ptr<restored_buffer> restored;
};


// Throws std::invalid_argument for invalid buffer settings (capacity 0).
reservoir_actor spawn_reservoir(caf::actor_system& sys, reservoir_settings settings);

}  // namespace melissa
