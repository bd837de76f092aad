#include "actors/shell_endpoint/shell_command.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace melissa::shell {
namespace {

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const auto start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Decimal digits only: "+3", "-1", "0x10" and "3.0" are refused rather than
// guessed at, since a wrong guess kills the wrong job.
bool parse_unsigned(const std::string& text, std::uint64_t max, std::uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (max - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

parse_result error(std::string message) { return parse_result{std::move(message)}; }

parse_result no_arguments(command_kind kind, const std::vector<std::string>& words) {
  if (words.size() > 1)
    return error(to_string(kind) + " takes no arguments, got '" + words[1] + "'");
  shell_command cmd;
  cmd.kind = kind;
  return parse_result{cmd};
}

parse_result job_id_command(command_kind kind, const std::vector<std::string>& words) {
  const auto name = to_string(kind);
  if (words.size() < 2) return error(name + " expects a job id (usage: " + name + " <id>)");
  if (words.size() > 2)
    return error(name + " expects one job id, got extra '" + words[2] + "'");
  std::uint64_t id = 0;
  if (!parse_unsigned(words[1], std::numeric_limits<std::uint32_t>::max(), id))
    return error(name + " expects a job id, got '" + words[1] + "'");
  shell_command cmd;
  cmd.kind = kind;
  cmd.job_id = static_cast<std::uint32_t>(id);
  return parse_result{cmd};
}

parse_result jobs_command(const std::vector<std::string>& words) {
  if (words.size() > 2) return error("jobs takes at most one state, got extra '" + words[2] + "'");
  shell_command cmd;
  cmd.kind = command_kind::jobs;
  if (words.size() == 2) {
    const auto state = lower(words[1]);
    const auto& states = job_states();
    if (std::find(states.begin(), states.end(), state) == states.end())
      return error("jobs: unknown state '" + words[1] + "'; states: " + join(states, ", "));
    cmd.state_filter = state;
  }
  return parse_result{cmd};
}

parse_result set_command(const std::vector<std::string>& words) {
  const auto keys = join(settable_keys(), ", ");
  if (words.size() < 3)
    return error("set expects a key and a value (usage: set <key> <value>); settable keys: " +
                 keys);
  if (words.size() > 3) return error("set expects one value, got extra '" + words[3] + "'");
  const auto key = lower(words[1]);
  if (key != "job_limit") return error("cannot set '" + words[1] + "'; settable keys: " + keys);
  std::uint64_t n = 0;
  // A job limit of 0 would stall the study for good; `pause` is the way to stop submitting.
  if (!parse_unsigned(words[2], std::numeric_limits<std::uint32_t>::max(), n) || n < 1)
    return error("set job_limit expects an integer >= 1, got '" + words[2] + "'");
  shell_command cmd;
  cmd.kind = command_kind::set;
  cmd.key = key;
  cmd.value = std::to_string(n);
  return parse_result{cmd};
}

// Plain decimal seconds ("2", "0.5", "10.25"): no sign, exponent or hex, so
// that what is accepted is what the user meant.
bool parse_seconds(const std::string& text, double& out) {
  if (text.empty() || text.size() > 12) return false;
  std::size_t dots = 0, digits = 0;
  for (char c : text) {
    if (c == '.') ++dots;
    else if (c >= '0' && c <= '9') ++digits;
    else return false;
  }
  if (dots > 1 || digits == 0) return false;
  // By hand rather than std::stod, which follows the locale's decimal point.
  double value = 0, scale = 1;
  bool fraction = false;
  for (char c : text) {
    if (c == '.') {
      fraction = true;
    } else if (fraction) {
      scale /= 10;
      value += (c - '0') * scale;
    } else {
      value = value * 10 + (c - '0');
    }
  }
  out = value;
  return true;
}

// train [--watch [SECONDS]] (also -w)
parse_result train_command(const std::vector<std::string>& words) {
  shell_command cmd;
  cmd.kind = command_kind::train;
  if (words.size() == 1) return parse_result{cmd};
  const auto flag = lower(words[1]);
  if (flag != "--watch" && flag != "-w")
    return error("train takes only --watch [SECONDS], got '" + words[1] + "'");
  cmd.watch = true;
  if (words.size() == 2) return parse_result{cmd};
  if (words.size() > 3)
    return error("train --watch expects one number of seconds, got extra '" + words[3] + "'");
  double s = 0;
  if (!parse_seconds(words[2], s) || s < min_watch_interval_s || s > max_watch_interval_s)
    return error("train --watch expects seconds between 0.2 and 3600, got '" + words[2] + "'");
  cmd.watch_interval_s = s;
  return parse_result{cmd};
}

}  // namespace

const std::vector<std::string>& job_states() {
  static const std::vector<std::string> states{"pending", "running", "completed", "failed",
                                               "cancelled"};
  return states;
}

const std::vector<std::string>& settable_keys() {
  static const std::vector<std::string> keys{"job_limit"};
  return keys;
}

std::string to_string(command_kind kind) {
  switch (kind) {
    case command_kind::status: return "status";
    case command_kind::jobs: return "jobs";
    case command_kind::job: return "job";
    case command_kind::kill: return "kill";
    case command_kind::pause: return "pause";
    case command_kind::resume: return "resume";
    case command_kind::set: return "set";
    case command_kind::stop: return "stop";
    case command_kind::train: return "train";
    case command_kind::buffer: return "buffer";
    case command_kind::steering: return "steering";
    case command_kind::stats: return "stats";
    case command_kind::help: return "help";
    case command_kind::checkpoint: return "checkpoint";
  }
  return "?";
}

parse_result parse_command(std::string_view line) {
  const auto words = split_words(line);
  if (words.empty()) return error("empty command; try: help");
  const auto word = lower(words[0]);
  if (word == "status") return no_arguments(command_kind::status, words);
  if (word == "jobs") return jobs_command(words);
  if (word == "job") return job_id_command(command_kind::job, words);
  if (word == "kill") return job_id_command(command_kind::kill, words);
  if (word == "pause") return no_arguments(command_kind::pause, words);
  if (word == "resume") return no_arguments(command_kind::resume, words);
  if (word == "set") return set_command(words);
  if (word == "stop") return no_arguments(command_kind::stop, words);
  if (word == "train") return train_command(words);
  if (word == "buffer") return no_arguments(command_kind::buffer, words);
  if (word == "steering") return no_arguments(command_kind::steering, words);
  if (word == "stats") return no_arguments(command_kind::stats, words);
  if (word == "checkpoint") return no_arguments(command_kind::checkpoint, words);
  if (word == "help" || word == "?") {
    // "help kill" is a natural thing to type: answer with the whole help.
    shell_command cmd;
    cmd.kind = command_kind::help;
    return parse_result{cmd};
  }
  return error("unknown command '" + words[0] + "'; try: help");
}

const std::string& help_text() {
  static const std::string text =
      "commands:\n"
      "  status                 the study: state, simulations, job limit, throughput\n"
      "  jobs [STATE]           the jobs, all or those in STATE\n"
      "                         (pending, running, completed, failed, cancelled)\n"
      "  job ID                 one job in detail\n"
      "  kill ID                cancel a job\n"
      "  pause                  submit no new jobs; running jobs go on\n"
      "  resume                 submit jobs again\n"
      "  set job_limit N        run at most N jobs at a time (N >= 1)\n"
      "  stop                   stop the study: no new simulation starts, running ones finish\n"
      "  train [--watch [S]]    training, one line per server rank: batches, losses,\n"
      "                         samples/s, busy %, buffer, learning rate\n"
      "                         (--watch: refresh every S seconds, default 2, until Ctrl-C)\n"
      "  buffer                 the training buffer of each rank: fill, inserts, evictions,\n"
      "                         batches, how often samples were drawn\n"
      "  steering               Breed steering (rank 0): r, sigma per member, resampled\n"
      "                         simulations, last resampling\n"
      "  stats                  statistics mode, per server rank: simulations and groups\n"
      "                         folded in, widest Sobol confidence interval now\n"
      "  checkpoint             take a checkpoint of the server now (training and statistics\n"
      "                         studies);\n"
      "                         answers with its directory and batch once it is written\n"
      "  help                   this text\n"
      "  quit, exit             leave the shell (the study goes on)\n";
  return text;
}

}  // namespace melissa::shell
