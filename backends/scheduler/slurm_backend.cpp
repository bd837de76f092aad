#include "backends/scheduler/slurm_backend.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "backends/scheduler/script.hpp"
#include "config/study.hpp"

namespace melissa::scheduler {
namespace slurm {
namespace {

using detail::trim;

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t begin = 0;
  for (;;) {
    const auto end = s.find(sep, begin);
    out.push_back(s.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (end == std::string_view::npos) return out;
    begin = end + 1;
  }
}

std::optional<int> to_int(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string join(const std::vector<std::string>& ids, char sep) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : std::string(1, sep)) + id;
  return out;
}

bool in(std::string_view word, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

// Options shared by a job of its own and the allocation.
void placement_options(std::vector<std::string>& out, const job_settings& s) {
  if (!s.partition.empty()) out.push_back("--partition=" + s.partition);
  if (!s.account.empty()) out.push_back("--account=" + s.account);
  if (!s.gres.empty()) out.push_back("--gres=" + s.gres);
}

}  // namespace

bool is_job_id(std::string_view id) {
  // 123, or an array task 123_4 / a heterogeneous component 123+1.
  const auto sep = id.find_first_of("_+");
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return sep == std::string_view::npos ? digits(id) : digits(id.substr(0, sep)) && digits(id.substr(sep + 1));
}

std::string state_word(std::string_view slurm_state) {
  std::string word = trim(slurm_state.substr(0, slurm_state.find(' ')));
  while (!word.empty() && word.back() == '+') word.pop_back();
  return word;
}

bool is_pending_state(std::string_view s) {
  return in(state_word(s), {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                            "RESV_DEL_HOLD"});
}

bool is_running_state(std::string_view s) {
  return in(state_word(s), {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING",
                            "STAGE_OUT", "RESIZING"});
}

job_state map_state(std::string_view slurm_state, std::optional<int> exit_code, bool cancelled_by_us) {
  const std::string word = state_word(slurm_state);
  if (is_pending_state(word)) return job_state::pending;
  if (is_running_state(word)) return job_state::running;
  const job_state failure = cancelled_by_us ? job_state::cancelled : job_state::failed;
  if (word == "COMPLETED") return exit_code.value_or(0) == 0 ? job_state::completed : failure;
  if (in(word, {"CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}))
    return failure;
  // A state this code does not know (a later Slurm): not final, so that the
  // job is not restarted while it may still run; the launcher's timeout holds.
  return job_state::running;
}

std::string batch_script(const job_request& request, const std::vector<std::string>& sbatch_argv,
                         const std::string& script_path) {
  std::string out = detail::script_header(request, detail::shell_command(sbatch_argv), script_path);
  // exec: scancel's signal reaches the program (or srun) itself, not a shell.
  out += "exec ";
  if (request.settings.tasks > 1)
    out += "srun --ntasks=" + std::to_string(request.settings.tasks) + " ";
  return out + detail::shell_command(request.argv) + "\n";
}

int server_term_grace(const std::string& time_limit) {
  const auto limit = time_limit.empty() ? 0 : config::duration_seconds(time_limit);
  if (limit <= 0) return server_term_grace_s;  // the partition's limit: unknown here
  return static_cast<int>(std::min<std::int64_t>(server_term_grace_s, limit / 2));
}

std::vector<std::string> sbatch_command(const job_request& request, const std::string& script_path) {
  const job_settings& s = request.settings;
  std::vector<std::string> out = {"sbatch", "--parsable", "--job-name=" + request.name};
  if (!request.stdout_path.empty()) out.push_back("--output=" + request.stdout_path);
  if (!request.stderr_path.empty()) out.push_back("--error=" + request.stderr_path);
  if (!request.workdir.empty()) out.push_back("--chdir=" + request.workdir);
  // ALL: the launcher's environment (PATH, modules) reaches the job; the
  // request's own variables are exported by the script.
  out.push_back("--export=ALL");
  out.push_back("--nodes=" + std::to_string(s.nodes));
  out.push_back("--ntasks=" + std::to_string(s.tasks));
  placement_options(out, s);
  if (!s.time_limit.empty()) out.push_back("--time=" + s.time_limit);
  // The server gets SIGTERM this long before a time-limit kill (B: the batch
  // shell, which exec'ed the server or srun, and srun forwards it to the
  // ranks): it checkpoints and exits 75, and the launcher restarts it from
  // that checkpoint (docs/checkpoints.md). Slurm may signal up to 60 s early.
  if (request.kind == job_kind::server)
    out.push_back("--signal=B:TERM@" + std::to_string(server_term_grace(s.time_limit)));
  out.insert(out.end(), s.extra.begin(), s.extra.end());
  out.push_back(script_path);
  return out;
}

std::vector<std::string> allocation_command(const slurm_options& o) {
  std::vector<std::string> out = {"sbatch", "--parsable", "--job-name=melissa-allocation",
                                  "--output=" + o.allocation_log, "--error=" + o.allocation_log,
                                  "--nodes=" + std::to_string(o.allocation_nodes)};
  if (o.allocation_exclusive) out.push_back("--exclusive");
  out.push_back("--time=" + o.allocation_time);
  placement_options(out, o.allocation);
  out.insert(out.end(), o.allocation.extra.begin(), o.allocation.extra.end());
  out.push_back("--wrap=exec sleep infinity");
  return out;
}

std::vector<std::string> step_command(const std::string& allocation_id, const job_request& request) {
  const job_settings& s = request.settings;
  std::vector<std::string> out = {"srun", "--jobid=" + allocation_id, "--job-name=" + request.name,
                                  "--nodes=" + std::to_string(s.nodes),
                                  "--ntasks=" + std::to_string(s.tasks),
                                  // Only the CPUs this step asks for, so that steps share the nodes.
                                  "--exact"};
  if (!request.workdir.empty()) out.push_back("--chdir=" + request.workdir);
  out.insert(out.end(), s.extra.begin(), s.extra.end());
  out.insert(out.end(), request.argv.begin(), request.argv.end());
  return out;
}

namespace {

bool same_placement(const job_request& a, const job_request& b) {
  const job_settings& x = a.settings;
  const job_settings& y = b.settings;
  return a.kind == b.kind && a.workdir == b.workdir &&
         std::tie(x.partition, x.account, x.time_limit, x.nodes, x.tasks, x.gres, x.extra) ==
             std::tie(y.partition, y.account, y.time_limit, y.nodes, y.tasks, y.gres, y.extra);
}

}  // namespace

std::vector<std::vector<std::size_t>> array_groups(const std::vector<job_request>& requests,
                                                    std::size_t array_size) {
  if (array_size < 1) array_size = 1;
  std::vector<std::vector<std::size_t>> groups;
  std::vector<std::size_t> open;  // groups that still take tasks
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto g = std::find_if(open.begin(), open.end(), [&](std::size_t k) {
      return same_placement(requests[groups[k].front()], requests[i]);
    });
    if (g == open.end()) {
      groups.push_back({i});
      if (array_size > 1) open.push_back(groups.size() - 1);
      continue;
    }
    groups[*g].push_back(i);
    if (groups[*g].size() == array_size) open.erase(g);
  }
  return groups;
}

std::string array_script(const std::vector<const job_request*>& requests,
                         const std::vector<std::string>& sbatch_argv, const std::string& script_path) {
  std::string out = "#!/bin/bash\n";
  out += "# Melissa job array of " + std::to_string(requests.size()) + " " +
         (requests.empty() ? "client" : to_string(requests.front()->kind)) + " jobs\n";
  out += "# submitted with: " + detail::shell_command(sbatch_argv) + "\n";
  out += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const job_request& r = *requests[i];
    out += std::to_string(i) + ")\n";
    out += "  # " + r.name + "\n";
    for (const auto& [name, value] : r.env) out += "  export " + name + "=" + detail::shell_quote(value) + "\n";
    if (!r.secret_env.empty())
      out += "  . " + detail::shell_quote(script_path + "." + std::to_string(i) + ".env") + " || exit 1\n";
    if (!r.workdir.empty()) out += "  cd " + detail::shell_quote(r.workdir) + " || exit 1\n";
    // Each task has logs of its own: sbatch's --output is the array's.
    if (!r.stdout_path.empty()) out += "  exec >" + detail::shell_quote(r.stdout_path) + " || exit 1\n";
    if (!r.stderr_path.empty()) out += "  exec 2>" + detail::shell_quote(r.stderr_path) + " || exit 1\n";
    out += "  exec ";
    if (r.settings.tasks > 1) out += "srun --ntasks=" + std::to_string(r.settings.tasks) + " ";
    out += detail::shell_command(r.argv) + "\n  ;;\n";
  }
  out += "*)\n  echo \"melissa: no task $SLURM_ARRAY_TASK_ID in this array\" >&2\n  exit 1\n  ;;\nesac\n";
  return out;
}

std::vector<std::string> array_sbatch_command(const job_request& first, std::size_t tasks,
                                              const std::string& log, const std::string& script_path) {
  job_request placed = first;
  placed.name = first.name + "-array";
  placed.stdout_path = log;
  placed.stderr_path = log;
  auto out = sbatch_command(placed, script_path);
  out.pop_back();  // the script, appended again last
  out.push_back("--array=0-" + std::to_string(tasks == 0 ? 0 : tasks - 1));
  // The tasks share the array's log: they must not truncate one another's lines.
  out.push_back("--open-mode=append");
  out.push_back(script_path);
  return out;
}

std::vector<std::string> squeue_command(const std::vector<std::string>& ids) {
  // -t all: with -j alone squeue still hides finished jobs (Slurm 22.05),
  // which it keeps for MinJobAge seconds and shows with their end state.
  // -r: one line per array task ("123_4"); without it pending tasks of an
  // array share one line "123_[4-7]" and would read NOT_FOUND.
  return {"squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", join(ids, ',')};
}

std::vector<std::string> sacct_command(const std::vector<std::string>& ids) {
  return {"sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", join(ids, ',')};
}

std::string parse_sbatch_id(std::string_view out) {
  // --parsable prints "<id>" or "<id>;<cluster>"; site plugins may print
  // other lines before it, so the last non-empty line counts.
  std::string last;
  for (const auto line : split(out, '\n'))
    if (!trim(line).empty()) last = trim(line);
  const std::string id = trim(std::string_view(last).substr(0, last.find(';')));
  return to_int(id) ? id : std::string();
}

std::vector<std::string> array_task_ids(std::string_view id) {
  const std::string whole = trim(id);
  const auto open = whole.find("_[");
  if (open == std::string::npos || whole.back() != ']') return {whole};
  const std::string base = whole.substr(0, open);
  std::string_view list(whole);
  list = list.substr(open + 2, list.size() - open - 3);
  list = list.substr(0, list.find('%'));  // "%4": at most 4 running at once
  // A task list of an array as large as Slurm allows (MaxArraySize is at
  // most 4,000,001): anything else is not such a list, kept as it reads.
  constexpr int max_tasks = 4000001;
  std::vector<std::string> ids;
  for (const auto part : split(list, ',')) {
    const auto dash = part.find('-');
    const auto from = to_int(part.substr(0, dash));
    const auto to = dash == std::string_view::npos ? from : to_int(part.substr(dash + 1));
    if (!from || !to || *to < *from || *to >= max_tasks ||
        ids.size() + static_cast<std::size_t>(*to - *from) >= static_cast<std::size_t>(max_tasks))
      return {whole};
    for (int t = *from; t <= *to; ++t) ids.push_back(base + "_" + std::to_string(t));
  }
  return ids;
}

std::map<std::string, std::string> parse_squeue(std::string_view out) {
  std::map<std::string, std::string> states;
  for (const auto line : split(out, '\n')) {
    const auto fields = split(line, '|');
    if (fields.size() < 2) continue;
    if (trim(fields[0]).empty()) continue;
    for (const auto& id : array_task_ids(fields[0])) states[id] = trim(fields[1]);
  }
  return states;
}

std::map<std::string, accounting_record> parse_sacct(std::string_view out) {
  std::map<std::string, accounting_record> records;
  for (const auto line : split(out, '\n')) {
    const auto fields = split(line, '|');
    if (fields.size() < 3) continue;
    if (trim(fields[0]).empty()) continue;
    accounting_record r;
    r.state = state_word(fields[1]);
    const auto code = split(trim(fields[2]), ':');
    r.exit_code = to_int(code[0]);
    if (code.size() > 1) {
      const auto sig = to_int(code[1]);
      if (sig && *sig != 0) r.signal = sig;
    }
    // An array's tasks that have not started share one line, "123_[4-7]".
    for (const auto& id : array_task_ids(fields[0])) records[id] = r;
  }
  return records;
}

}  // namespace slurm

// ---------------------------------------------------------------------------

namespace {

bool mentions(const command_result& r, std::string_view text) {
  return r.err.find(text) != std::string::npos || r.out.find(text) != std::string::npos;
}

// Where the batch script of a job goes: next to its stdout log.
std::string script_path_of(const job_request& request) {
  if (!request.stdout_path.empty()) return request.stdout_path + ".sbatch";
  return (request.workdir.empty() ? std::string(".") : request.workdir) + "/" + request.name + ".sbatch";
}

}  // namespace

slurm_backend::slurm_backend(command_runner runner, slurm_options opts)
    : run_(std::move(runner)), options_(std::move(opts)), steps_(options_.kill_grace) {}

slurm_backend::~slurm_backend() {
  // The allocation first: Slurm ends its steps, so the srun processes exit
  // by themselves; steps_'s destructor then kills and reaps what remains.
  if (!allocation_id_.empty() && allocation_state_ != allocation_state::ended) {
    try {
      run_({"scancel", allocation_id_}, {});
    } catch (...) {
      // A destructor cannot report it; the allocation ends at its time limit.
    }
  }
}

bool slurm_backend::is_step(const std::string& id) const { return step_ids_.count(id) > 0; }

std::string slurm_backend::submit(const job_request& request) {
  detail::check_request(request);
  if (options_.schedule_in_schedule && request.kind == job_kind::client) return submit_step(request);
  return submit_job(request);
}

std::string slurm_backend::submit_job(const job_request& request) {
  const std::string what = std::string(to_string(request.kind)) + " job '" + request.name + "'";
  const std::string script_path = script_path_of(request);
  const auto argv = slurm::sbatch_command(request, script_path);
  detail::write_secret_env(script_path, request, what);
  detail::write_script(script_path, slurm::batch_script(request, argv, script_path), what);
  const command_result r = run_(argv, {});
  if (r.exit_code != 0) throw backend_error(what + ": " + detail::command_failure(argv, r));
  const std::string id = slurm::parse_sbatch_id(r.out);
  if (id.empty()) throw backend_error(what + ": sbatch printed no job id: " + r.out);
  return id;
}

std::vector<submit_outcome> slurm_backend::submit_many(const std::vector<job_request>& requests) {
  if (options_.array_size <= 1 || options_.schedule_in_schedule) return backend::submit_many(requests);
  std::vector<submit_outcome> out(requests.size());
  std::vector<job_request> valid;
  std::vector<std::size_t> index;  // valid[k] is requests[index[k]]
  for (std::size_t i = 0; i < requests.size(); ++i) {
    try {
      detail::check_request(requests[i]);
      valid.push_back(requests[i]);
      index.push_back(i);
    } catch (const std::exception& e) {
      out[i].error = e.what();
    }
  }
  for (const auto& group : slurm::array_groups(valid, options_.array_size)) {
    try {
      if (group.size() == 1) {
        out[index[group[0]]].id = submit_job(valid[group[0]]);
        continue;
      }
      std::vector<const job_request*> tasks;
      for (const auto k : group) tasks.push_back(&valid[k]);
      const auto ids = submit_array(tasks);
      for (std::size_t t = 0; t < group.size(); ++t) out[index[group[t]]].id = ids[t];
    } catch (const std::exception& e) {
      for (const auto k : group) out[index[k]].error = e.what();
    }
  }
  return out;
}

std::vector<std::string> slurm_backend::submit_array(const std::vector<const job_request*>& requests) {
  const job_request& first = *requests.front();
  const std::string what = std::to_string(requests.size()) + " " + to_string(first.kind) +
                           " jobs from '" + first.name + "' (job array)";
  const std::string script_path = script_path_of(first) + "-array";
  const std::string dir = std::filesystem::path(script_path).parent_path().string();
  const std::string log = (dir.empty() ? std::string(".") : dir) + "/slurm-array-%A.log";
  const auto argv = slurm::array_sbatch_command(first, requests.size(), log, script_path);
  for (std::size_t i = 0; i < requests.size(); ++i)
    detail::write_secret_env(script_path + "." + std::to_string(i), *requests[i], what);
  detail::write_script(script_path, slurm::array_script(requests, argv, script_path), what);
  const command_result r = run_(argv, {});
  if (r.exit_code != 0) throw backend_error(what + ": " + detail::command_failure(argv, r));
  const std::string id = slurm::parse_sbatch_id(r.out);
  if (id.empty()) throw backend_error(what + ": sbatch printed no job id: " + r.out);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < requests.size(); ++i) ids.push_back(id + "_" + std::to_string(i));
  return ids;
}

void slurm_backend::submit_allocation() {
  const auto argv = slurm::allocation_command(options_);
  const command_result r = run_(argv, {});
  if (r.exit_code != 0)
    throw backend_error("the clients' allocation: " + detail::command_failure(argv, r));
  const std::string id = slurm::parse_sbatch_id(r.out);
  if (id.empty()) throw backend_error("the clients' allocation: sbatch printed no job id: " + r.out);
  allocation_id_ = id;
  allocation_state_ = allocation_state::pending;
  allocation_word_ = "PENDING";
}

std::string slurm_backend::submit_step(const job_request& request) {
  // srun runs here (the program itself runs on the allocation's nodes, where
  // only Slurm can look for it).
  if (!detail::find_program("srun", detail::current_path(), ""))
    throw backend_error(std::string(to_string(request.kind)) + " job '" + request.name +
                        "': srun not found (PATH=" + detail::current_path() + ")");
  if (allocation_state_ == allocation_state::none || allocation_state_ == allocation_state::ended)
    submit_allocation();
  const std::string id = "step-" + std::to_string(++next_step_);
  step_ids_.insert(id);
  queued_.push_back({id, request});
  if (allocation_state_ == allocation_state::running) {
    launch_step(queued_.back());
    queued_.pop_back();
  }
  return id;
}

void slurm_backend::launch_step(const queued_step& step) {
  detail::spawn_request spawn;
  spawn.argv = slurm::step_command(allocation_id_, step.request);
  spawn.env = detail::job_environment(step.request);
  spawn.workdir = step.request.workdir;
  spawn.stdout_path = step.request.stdout_path;
  spawn.stderr_path = step.request.stderr_path;
  try {
    const auto srun = detail::find_program("srun", detail::current_path(), "");
    if (!srun) throw backend_error("srun not found (PATH=" + detail::current_path() + ")");
    spawn.executable = *srun;
    steps_.add(step.id, detail::spawn_in_session(spawn));
  } catch (const backend_error& e) {
    // poll() must not throw for one step: the step fails, with the reason.
    job_status s;
    s.id = step.id;
    s.state = job_state::failed;
    s.raw_state = e.what();
    finished_[step.id] = s;
  }
}

job_status slurm_backend::step_status(const std::string& id) {
  if (const auto f = finished_.find(id); f != finished_.end()) return f->second;
  for (const auto& q : queued_) {
    if (q.id != id) continue;
    return job_status{id, job_state::pending, "waiting for allocation " + allocation_id_ + " (" + allocation_word_ + ")"};
  }
  job_status s = steps_.status(id);
  if (is_final(s.state)) finished_[id] = s;
  return s;
}

std::vector<job_status> slurm_backend::poll(const std::vector<std::string>& ids) {
  steps_.finish_kills();
  std::vector<std::string> query;
  for (const auto& id : ids) {
    if (finished_.count(id) || is_step(id)) continue;
    // Not an id sbatch could have given: asking squeue would fail the whole poll.
    if (!slurm::is_job_id(id)) {
      finished_[id] = job_status{id, job_state::failed, "unknown job id"};
      continue;
    }
    if (std::find(query.begin(), query.end(), id) == query.end()) query.push_back(id);
  }
  const bool watch_allocation =
      options_.schedule_in_schedule && !allocation_id_.empty() &&
      (allocation_state_ == allocation_state::pending || allocation_state_ == allocation_state::running);

  std::map<std::string, job_status> fresh;
  if (!query.empty() || watch_allocation) {
    std::vector<std::string> asked = query;
    if (watch_allocation) asked.push_back(allocation_id_);
    const auto squeue = slurm::squeue_command(asked);
    const command_result r = run_(squeue, {});
    // squeue refuses a list whose ids are all unknown (purged after MinJobAge).
    if (r.exit_code != 0 && !mentions(r, "Invalid job id"))
      throw backend_error(detail::command_failure(squeue, r));
    const auto states = r.exit_code == 0 ? slurm::parse_squeue(r.out)
                                         : std::map<std::string, std::string>{};
    std::vector<std::string> missing;
    for (const auto& id : query) {
      const auto it = states.find(id);
      if (it == states.end()) {
        missing.push_back(id);
        continue;
      }
      job_status s;
      s.id = id;
      s.raw_state = slurm::state_word(it->second);
      s.state = slurm::map_state(it->second, std::nullopt, cancelled_.count(id) > 0);
      if (s.raw_state == "COMPLETED") s.exit_code = 0;  // Slurm's COMPLETED means exit 0
      fresh[id] = s;
    }
    if (!missing.empty()) {
      // Gone from slurmctld's memory: ask the accounting. Without accounting
      // sacct fails, and these jobs read NOT_FOUND below.
      const command_result a = run_(slurm::sacct_command(missing), {});
      const auto records = a.exit_code == 0 ? slurm::parse_sacct(a.out)
                                            : std::map<std::string, slurm::accounting_record>{};
      for (const auto& id : missing) {
        job_status s;
        s.id = id;
        const auto it = records.find(id);
        if (it == records.end()) {
          s.state = job_state::failed;
          s.raw_state = "NOT_FOUND";
        } else {
          s.raw_state = it->second.state;
          s.exit_code = it->second.exit_code;
          s.signal = it->second.signal;
          s.state = slurm::map_state(it->second.state, it->second.exit_code, cancelled_.count(id) > 0);
        }
        fresh[id] = s;
      }
    }
    for (const auto& [id, s] : fresh)
      if (is_final(s.state)) finished_[id] = s;

    if (watch_allocation) {
      const auto it = states.find(allocation_id_);
      allocation_word_ = it == states.end() ? "NOT_FOUND" : slurm::state_word(it->second);
      if (slurm::is_pending_state(allocation_word_))
        allocation_state_ = allocation_state::pending;
      else if (allocation_word_ == "RUNNING")
        allocation_state_ = allocation_state::running;
      else if (!slurm::is_running_state(allocation_word_))
        allocation_state_ = allocation_state::ended;  // its steps end with it
    }
  }

  if (allocation_state_ == allocation_state::running) {
    while (!queued_.empty()) {
      launch_step(queued_.front());
      queued_.pop_front();
    }
  } else if (allocation_state_ == allocation_state::ended && !queued_.empty()) {
    // Steps still wait (the allocation reached its time limit): a new one.
    submit_allocation();
  }

  std::vector<job_status> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    if (is_step(id)) {
      out.push_back(step_status(id));
    } else if (const auto f = finished_.find(id); f != finished_.end()) {
      out.push_back(f->second);
    } else {
      out.push_back(fresh.at(id));
    }
  }
  return out;
}

void slurm_backend::cancel(const std::string& id) {
  if (finished_.count(id)) return;
  if (is_step(id)) {
    const auto q = std::find_if(queued_.begin(), queued_.end(),
                                [&](const queued_step& s) { return s.id == id; });
    if (q != queued_.end()) {
      queued_.erase(q);
      finished_[id] = job_status{id, job_state::cancelled, "cancelled before start"};
      return;
    }
    steps_.cancel(id);
    return;
  }
  if (!slurm::is_job_id(id)) return;  // nothing this backend submitted
  cancelled_.insert(id);
  const std::vector<std::string> argv = {"scancel", id};
  const command_result r = run_(argv, {});
  // A job that already ended is not an error.
  if (r.exit_code != 0 && !mentions(r, "Invalid job id") && !mentions(r, "already completing or completed"))
    throw backend_error(detail::command_failure(argv, r));
}

}  // namespace melissa::scheduler
