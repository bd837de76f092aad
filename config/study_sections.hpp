// Internal to config/: the sections of the study file, one read_* function per
// [section] (study_sections.cpp, each with the checks of its own values), and
// the checks between sections (study_checks.cpp). parse_study (study.cpp)
// calls them in file order.
#pragma once

#include <string>
#include <vector>

#include "config/study_reader.hpp"

namespace melissa::config::detail {

// ---- sections (study_sections.cpp) ----------------------------------------

study_section read_study(table_reader t);
launcher_config read_launcher(table_reader t);
server_config read_server(table_reader t, const study_section& study);
client_config read_client(table_reader t, sink_kind sink);
parameters_config read_parameters(table_reader t);
std::vector<field_config> read_fields(table_reader& file, const study_config& c);
buffer_config read_buffer(table_reader t);
training_config read_training(table_reader t, const std::vector<field_config>& fields,
                              const buffer_config& buffer);
breed_config read_breed(table_reader t, const study_config& c);
checkpoint_config read_checkpoint(table_reader t, const study_section& study);
statistics_config read_statistics(table_reader t, const study_config& c);

// ---- checks between sections (study_checks.cpp) ----------------------------

// client.steps is required unless server.sink = "count".
void check_client_steps(const table_reader& t, const client_config& c, sink_kind sink);
// In training mode a time step of the field fits in one frame of server.max_frame_mb.
void check_field_frame(const table_reader& t, const field_config& f, const study_config& c);
// training.field names a [[fields]] entry; training.batch_size <= buffer.capacity.
void check_training_against(const table_reader& t, const training_config& c,
                            const std::vector<field_config>& fields, const buffer_config& buffer);
// [breed] needs server.sink = "train".
void check_breed_sink(const table_reader& t, const study_config& c);
// [buffer] and [training] need server.sink = "train".
void check_train_sections(const table_reader& file, const study_config& c);
// [statistics] needs study.mode = "statistics"; statistics mode needs server.sink = "count".
void check_statistics_mode(const table_reader& file, const study_config& c);

}  // namespace melissa::config::detail
