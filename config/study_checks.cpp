// The checks between sections of the study file: a value of one section
// that another section's values make wrong. Each is called by the section
// that is read last (study_sections.cpp, parse_study), right after that
// section's own checks, and points at that section's key.
#include "config/study_sections.hpp"

namespace melissa::config::detail {

// [client] against [server].
void check_client_steps(const table_reader& t, const client_config& c, sink_kind sink) {
  // Without it the server cannot tell a simulation that stopped early from a
  // complete one: its partial steps would be trained on, or written as a
  // complete dataset, and never retried.
  if (c.steps == 0 && sink != sink_kind::count)
    t.fail_key("steps", std::string("required with server.sink = \"") + to_string(sink) +
                            "\" (the number of time steps each simulation sends: a simulation that "
                            "ends early is then retried, not counted complete)");
}

// One [[fields]] entry against [study] and [server].
void check_field_frame(const table_reader& t, const field_config& f, const study_config& c) {
  // In training mode a whole time step travels as one float32 frame, which
  // the server refuses above max_frame_mb: say so now rather than mid-study.
  const std::uint64_t frame = 40 + 4 * f.size;
  if (c.study.mode == study_mode::training &&
      (f.size > c.server.max_frame_bytes() / 4 || frame > c.server.max_frame_bytes()))
    t.fail_key("size", std::to_string(f.size) + " float32 values per time step do not fit in a " +
                           "frame of server.max_frame_mb = " +
                           std::to_string(c.server.max_frame_mb) + " MiB");
}

// [training] against [[fields]] and [buffer].
void check_training_against(const table_reader& t, const training_config& c,
                            const std::vector<field_config>& fields, const buffer_config& buffer) {
  const bool known = std::any_of(fields.begin(), fields.end(),
                                 [&](const field_config& f) { return f.name == c.field; });
  if (!known) t.fail_key("field", "no [[fields]] entry is named " + quoted(c.field));
  // A batch comes from one rank's buffer: a FIFO or FIRO buffer smaller than a
  // batch could never fill one, and the study would wait forever.
  if (c.batch_size > buffer.capacity)
    t.fail_key("batch_size", "must be <= buffer.capacity = " + std::to_string(buffer.capacity) +
                                 " (a batch is drawn from one server rank's buffer), got " +
                                 std::to_string(c.batch_size));
}

// [breed] against [server].
void check_breed_sink(const table_reader& t, const study_config& c) {
  // Breed learns from the trainer's per-sample losses.
  if (c.server.sink != sink_kind::train)
    t.fail_key("period", std::string("[breed] needs server.sink = \"train\", got \"") +
                             to_string(c.server.sink) + "\"");
}

// [buffer] and [training] against [server], before either is read.
void check_train_sections(const table_reader& file, const study_config& c) {
  // Settings nobody would read are a mistake in the study (a forgotten
  // sink = "train" most likely): say so before any of their values.
  for (const char* section : {"buffer", "training"})
    if (c.server.sink != sink_kind::train && file.peek(section))
      file.fail_key(section, std::string("[") + section + "] needs server.sink = \"train\", got \"" +
                                 to_string(c.server.sink) + "\"");
}

// [statistics] against [study], and statistics mode against [server] and [client].
void check_statistics_mode(const table_reader& file, const study_config& c) {
  if (c.study.mode != study_mode::statistics) {
    if (file.peek("statistics"))
      file.fail_key("statistics", std::string("[statistics] needs study.mode = \"statistics\", got \"") +
                                      to_string(c.study.mode) + "\"");
    return;
  }
  // The statistics actor is the sink of a statistics study.
  const auto* server = file.peek("server") ? file.peek("server")->as_table() : nullptr;
  if (c.server.sink != sink_kind::count) {
    const toml::node* sink = server ? server->get("sink") : nullptr;
    file.fail(sink ? sink->source() : file.peek("server")->source(), "server.sink",
              std::string("study.mode = \"statistics\" computes statistics in the server and needs "
                          "server.sink = \"count\" (the default), got \"") +
                  to_string(c.server.sink) + "\"");
  }
  // Outputs are [time steps, cells]; a group's Sobol update needs every step of every member.
  if (c.client.steps == 0) {
    const toml::node* client = file.peek("client");
    file.fail(client->source(), "client.steps",
              "required with study.mode = \"statistics\" (the number of time steps each simulation "
              "sends: the statistics files have one row per time step)");
  }
}

}  // namespace melissa::config::detail
