// make_backend and the job settings from a study file.
#include <doctest/doctest.h>

#include "backends/scheduler/factory.hpp"
#include "backends/scheduler/slurm_backend.hpp"
#include "helpers.hpp"

using namespace melissa;
using namespace melissa::scheduler;
using namespace melissa::scheduler::testing;

namespace {

config::study_config study_with(const std::string& launcher) {
  return config::parse_study(R"(
[study]
name = "s"
output_dir = "/out"
[launcher]
)" + launcher + R"(
[server]
ranks = 2
[client]
command = ["solver"]
ranks = 3
[parameters]
names = ["a"]
count = 1
[[fields]]
name = "u"
size = 1
)",
                             "s.toml");
}

}  // namespace

TEST_CASE("factory: the backend named by launcher.backend") {
  CHECK(std::string(make_backend(study_with(""))->name()) == "local");
  CHECK(std::string(make_backend(study_with("backend = \"oar\""))->name()) == "oar");
  CHECK(std::string(make_backend(study_with("backend = \"slurm\""))->name()) == "slurm");
}

TEST_CASE("factory: job settings: the placement tables, tasks from server.ranks / client.ranks") {
  const auto study = study_with(R"(backend = "slurm"
[launcher.server_job]
partition = "gpu"
gres = "gpu:2"
time = "02:00:00"
[launcher.client_job]
partition = "cpu"
account = "proj"
nodes = 2
extra = ["--qos=fast"])");
  const job_settings server = job_settings_for(study, job_kind::server);
  CHECK(server.partition == "gpu");
  CHECK(server.gres == "gpu:2");
  CHECK(server.time_limit == "02:00:00");
  CHECK(server.tasks == 2);
  CHECK(server.nodes == 1);
  const job_settings client = job_settings_for(study, job_kind::client);
  CHECK(client.partition == "cpu");
  CHECK(client.account == "proj");
  CHECK(client.nodes == 2);
  CHECK(client.tasks == 3);
  CHECK(client.extra == std::vector<std::string>{"--qos=fast"});
  CHECK(client.time_limit.empty());
}

TEST_CASE("factory: schedule-in-schedule settings reach the Slurm backend's allocation") {
  const auto study = study_with(R"(backend = "slurm"
schedule_in_schedule = true
allocation_nodes = 4
allocation_time = "03:00:00"
[launcher.client_job]
partition = "cpu"
extra = ["--qos=fast"])");
  fake_srun srun;  // the first client checks that srun exists
  fake_runner fake;
  fake.answer = [](const std::vector<std::string>&) { return command_result{0, "31\n", ""}; };
  temp_dir dir;
  {
    auto b = make_backend(study, fake.runner());
    job_request r;
    r.name = "sim0";
    r.argv = {"solver"};
    r.stdout_path = dir / "sim0.out";
    b->submit(r);  // the first client asks for the allocation
  }
  REQUIRE(fake.calls.size() >= 1);
  CHECK(fake.calls[0] == std::vector<std::string>{"sbatch", "--parsable", "--job-name=melissa-allocation",
                                                  "--output=/out/slurm-allocation-%j.log",
                                                  "--error=/out/slurm-allocation-%j.log", "--nodes=4",
                                                  "--time=03:00:00", "--partition=cpu",
                                                  // the slots of job_limit (4) clients of 3 ranks, not
                                                  // whole nodes: the server may share a node with them
                                                  "--qos=fast", "--ntasks=12", "--wrap=exec sleep infinity"});
  CHECK(fake.calls.back() == std::vector<std::string>{"scancel", "31"});
}
