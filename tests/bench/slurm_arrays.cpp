// Issue 16: waiting simulations submitted as Slurm job arrays (one `sbatch
// --array` for up to array_size jobs) against one sbatch per job, on the real
// one-node Slurm of tests/slurm/start-slurm.sh. Both arms in the same run:
// N short jobs (`true`) submitted at once through slurm_backend::submit_many,
// polled every 0.2 s until all are final. Prints jobs/s from the first sbatch
// to the last final state, and scheduler calls (sbatch, squeue, sacct) per
// job, with the arrays' ratios against the baseline.
//
//   slurm_arrays [jobs=100] [array_size=50]
// Exit 77 when Slurm cannot be started here (not root, packages missing).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backends/scheduler/slurm_backend.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::scheduler;
using clock_type = std::chrono::steady_clock;

namespace {

struct arm_result {
  double seconds = 0;
  std::map<std::string, int> calls;
  int completed = 0;
};

arm_result run_arm(const std::string& dir, int jobs, std::uint32_t array_size) {
  arm_result out;
  command_runner runner = [&](const std::vector<std::string>& argv, const std::string& in) {
    ++out.calls[argv.at(0)];
    return run_command(argv, in);
  };
  slurm_options o;
  o.array_size = array_size;
  slurm_backend b(runner, o);
  std::vector<job_request> requests;
  const std::string tag = "a" + std::to_string(array_size);
  for (int i = 0; i < jobs; ++i) {
    job_request r;
    r.name = "bench-" + tag + "-" + std::to_string(i);
    r.argv = {"true"};
    r.env["MELISSA_SIM_ID"] = std::to_string(i);
    r.secret_env["MELISSA_TICKET"] = "t" + std::to_string(i);
    r.workdir = dir;
    r.stdout_path = dir + "/" + r.name + ".out";
    r.stderr_path = dir + "/" + r.name + ".err";
    requests.push_back(r);
  }
  const auto start = clock_type::now();
  std::vector<std::string> ids;
  for (const auto& s : b.submit_many(requests)) {
    if (!s.error.empty()) {
      std::cerr << "submit failed: " << s.error << "\n";
      std::exit(1);
    }
    ids.push_back(s.id);
  }
  const auto limit = start + std::chrono::seconds(300);
  for (;;) {
    const auto statuses = b.poll(ids);
    int final_ = 0;
    out.completed = 0;
    for (const auto& s : statuses) {
      final_ += is_final(s.state);
      out.completed += s.state == job_state::completed;
    }
    if (final_ == jobs || clock_type::now() > limit) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return out;
}

void print(const char* name, const arm_result& r, int jobs) {
  const auto per = [&](const char* c) { return r.calls.count(c) ? double(r.calls.at(c)) / jobs : 0.0; };
  std::printf("%-22s %5d/%d completed  %7.2f s  %7.2f jobs/s  sbatch/job %.3f  squeue/job %.3f  sacct/job %.3f  calls/job %.3f\n",
              name, r.completed, jobs, r.seconds, jobs / r.seconds, per("sbatch"), per("squeue"), per("sacct"),
              per("sbatch") + per("squeue") + per("sacct"));
}

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 100;
  const std::uint32_t array_size = argc > 2 ? std::atoi(argv[2]) : 50;
  if (jobs < 1 || array_size < 2) {
    std::cerr << "usage: slurm_arrays [jobs >= 1] [array_size >= 2]\n";
    return 2;
  }
  if (::geteuid() != 0) {
    std::cout << "skipped: starting Slurm needs root\n";
    return 77;
  }
  const char* source = std::getenv("MELISSA_SOURCE_DIR");
  const command_result started =
      run_command({"bash", std::string(source ? source : MELISSA_SOURCE_DIR) + "/tests/slurm/start-slurm.sh"});
  if (started.exit_code == 77) {
    std::cout << "skipped: " << started.err;
    return 77;
  }
  if (started.exit_code != 0) {
    std::cerr << "cannot start Slurm: " << started.err;
    return 1;
  }
  melissa::testing::temp_dir dir("melissa-bench-slurm-arrays", "/tmp");
  std::printf("%d jobs of `true` submitted at once on the one-node Slurm, polled every 0.2 s\n", jobs);
  const arm_result plain = run_arm(dir.path, jobs, 0);
  print("one sbatch per job", plain, jobs);
  const arm_result arrays = run_arm(dir.path, jobs, array_size);
  print(("arrays of " + std::to_string(array_size)).c_str(), arrays, jobs);
  const auto sb = [](const arm_result& r) { return r.calls.count("sbatch") ? r.calls.at("sbatch") : 0; };
  std::printf("arrays / baseline: jobs/s x%.2f, sbatch calls x%.3f (%d -> %d)\n",
              plain.seconds / arrays.seconds, double(sb(arrays)) / std::max(1, sb(plain)), sb(plain), sb(arrays));
  return plain.completed == jobs && arrays.completed == jobs ? 0 : 1;
}
