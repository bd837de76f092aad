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

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/reservoir/training_buffer.hpp"
#include "messages/actor_types.hpp"
#include "messages/sample_encoding.hpp"

namespace melissa {

// reservoir_actor (sink_actor plus batch_atom and buffer_atom) is in
// messages/actor_types.hpp.

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
  // buffer's snapshot there, at the trainer's step boundary.
  std::function<void(const training_buffer&)> at_batch_request;
};

// Throws std::invalid_argument for invalid buffer settings (capacity 0).
reservoir_actor spawn_reservoir(caf::actor_system& sys, reservoir_settings settings);

}  // namespace melissa
