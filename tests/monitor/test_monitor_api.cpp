// The monitor's routes against a fake study: the token, the input checks,
// the status codes, the JSON, the cookie, the pieces (no CAF, no HTTP).
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/monitor/monitor_api.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::monitor;
using json = nlohmann::json;

namespace {

const std::string token = "0123456789abcdef0123456789abcdef";

// Records what it was asked and answers like the launcher.
struct fake_study : study_source {
  bool is_live = true;
  std::vector<std::string> calls;
  bool live() const override { return is_live; }
  std::string status() override {
    calls.push_back("status");
    return R"({"ok":true,"state":"running","simulations":{"completed":2}})";
  }
  std::string jobs(const std::string& f) override {
    calls.push_back("jobs " + f);
    return R"({"ok":true,"jobs":[{"id":1,"kind":"server","state":"running","started_at":0.1},
      {"id":2,"kind":"client","sim_id":0,"attempt":1,"state":"completed","parameters":"100,200","started_at":1.0},
      {"id":3,"kind":"client","sim_id":1,"attempt":1,"state":"running","parameters":"300,400","started_at":2.0},
      {"id":4,"kind":"client","sim_id":2,"attempt":1,"state":"pending","parameters":"1,2","started_at":-1}]})";
  }
  std::string job(std::uint32_t id) override {
    calls.push_back("job " + std::to_string(id));
    return id == 3 ? R"({"ok":true,"job":{"id":3}})" : R"({"ok":false,"error":"no job )" + std::to_string(id) + "\"}";
  }
  std::string kill(std::uint32_t id) override {
    calls.push_back("kill " + std::to_string(id));
    return id == 2 ? R"({"ok":false,"error":"job 2 already completed"})"
                   : R"({"ok":true,"killed":)" + std::to_string(id) + "}";
  }
  std::string pause() override { calls.push_back("pause"); return R"({"ok":true,"paused":true})"; }
  std::string resume() override { calls.push_back("resume"); return R"({"ok":true,"paused":false})"; }
  std::string set(const std::string& k, const std::string& v) override {
    calls.push_back("set " + k + " " + v);
    return R"({"ok":true,"job_limit":)" + v + "}";
  }
  std::string training() override {
    return R"({"ok":true,"state":"running","ranks":[{"rank":0,"batches":7}]})";
  }
  std::string buffer() override { return R"({"ok":false,"error":"this study has no training buffer"})"; }
  std::string steering() override {
    return R"({"ok":true,"steering":{"r":0.5,"provenance":[{"sim":1,"origin":"proposal"}]}})";
  }
};

struct fixture {
  melissa::testing::temp_dir dir{"monitor-api"};
  std::shared_ptr<fake_study> study = std::make_shared<fake_study>();
  monitor_api api{study, token, dir.path, {"T0", "T1"},
                  {{"index.html", {"text/html", "<html>page</html>"}},
                   {"monitor.js", {"text/javascript", "js"}}}};

  http_reply get(const std::string& path, std::multimap<std::string, std::string> params = {}) {
    http_request r{"GET", path, std::move(params), "Bearer " + token, "", ""};
    return api.handle(r);
  }
  http_reply post(const std::string& path, const std::string& body = "") {
    http_request r{"POST", path, {}, "Bearer " + token, "", body};
    return api.handle(r);
  }
};

json body(const http_reply& r) { return json::parse(r.body); }

}  // namespace

TEST_CASE("no token, a wrong token: 401 and nothing asked") {
  fixture f;
  for (const std::string auth : std::vector<std::string>{"", "Bearer wrong", "Basic " + token, "Bearer"}) {
    CAPTURE(auth);
    const auto r = f.api.handle({"GET", "/api/status", {}, auth, "", ""});
    CHECK(r.status == 401);
    CHECK(r.headers.at("WWW-Authenticate") == "Bearer");
    CHECK(body(r)["ok"] == false);
  }
  CHECK(body(f.api.handle({"GET", "/", {}, "", "", ""}))["error"].get<std::string>().find("?token=") !=
        std::string::npos);
  CHECK(body(f.api.handle({"GET", "/", {}, "Bearer x", "", ""}))["error"] == "wrong token");
  CHECK(f.api.handle({"POST", "/api/pause", {}, "", "melissa_monitor_token=nope", ""}).status == 401);
  CHECK(f.study->calls.empty());
}

TEST_CASE("the printed URL's token sets the cookie, then the cookie is enough") {
  fixture f;
  const auto first = f.api.handle({"GET", "/", {{"token", token}}, "", "", ""});
  CHECK(first.status == 303);
  CHECK(first.headers.at("Location") == "/");
  CHECK(first.headers.at("Set-Cookie") ==
        "melissa_monitor_token=" + token + "; Path=/; HttpOnly; SameSite=Strict");
  const auto page = f.api.handle({"GET", "/", {}, "", "a=b; melissa_monitor_token=" + token, ""});
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html");
  CHECK(page.body == "<html>page</html>");
  CHECK(f.api.handle({"GET", "/static/monitor.js", {}, "", "melissa_monitor_token=" + token, ""}).body == "js");
  CHECK(f.get("/static/nope.js").status == 404);
}

TEST_CASE("the cookie is named after the port; a stale cookie does not hide the URL's token") {
  fixture f;
  f.api.set_port(41873);
  const auto r = f.api.handle({"GET", "/", {{"token", token}}, "", "melissa_monitor_token_41873=stale", ""});
  CHECK(r.status == 303);
  CHECK(r.headers.at("Set-Cookie").rfind("melissa_monitor_token_41873=" + token + ";", 0) == 0);
  CHECK(f.api.handle({"GET", "/", {}, "", "melissa_monitor_token=" + token, ""}).status == 401);
  CHECK(f.api.handle({"GET", "/", {}, "", "melissa_monitor_token_41873=" + token, ""}).status == 200);
}

TEST_CASE("reading: status, jobs, one job, training rows, figures, statistics") {
  fixture f;
  const auto status = f.get("/api/status");
  CHECK(status.status == 200);
  CHECK(body(status)["live"] == true);
  CHECK(body(status)["simulations"]["completed"] == 2);
  CHECK(body(status)["jobs"] ==
        json::parse(R"({"pending":1,"running":2,"completed":1,"failed":0,"cancelled":0})"));

  CHECK(f.get("/api/jobs", {{"state", "Running"}}).status == 200);
  CHECK(f.study->calls.back() == "jobs running");
  const auto bad = f.get("/api/jobs", {{"state", "sleeping"}});
  CHECK(bad.status == 400);
  CHECK(body(bad)["error"] ==
        "state must be one of pending, running, completed, failed, cancelled, got 'sleeping'");

  // Bytes that are not UTF-8 are echoed replaced, not thrown on (a 500).
  const auto bytes = f.get("/api/jobs", {{"state", "\xff\xfe"}});
  CHECK(bytes.status == 400);
  CHECK(body(bytes)["error"] == "state must be one of pending, running, completed, failed, cancelled, "
                               "got '\xef\xbf\xbd\xef\xbf\xbd'");
  CHECK(f.get("/api/jobs/\xff").status == 400);

  CHECK(f.get("/api/jobs/3").status == 200);
  CHECK(f.get("/api/jobs/9").status == 404);
  CHECK(body(f.get("/api/jobs/9"))["error"] == "no job 9");
  for (const std::string id : {"0", "-1", "abc", "4294967296", "1e3", "", "3/x"}) {
    CAPTURE(id);
    const auto r = f.get("/api/jobs/" + id);
    CHECK(r.status == 400);
  }

  // metrics.csv: rows after `since`, empty cells left out, a partial last line skipped.
  std::filesystem::create_directories(f.dir / "metrics");
  std::ofstream(f.dir / "metrics/metrics.csv")
      << "step,wall_time,train_loss,validation_loss\n5,1.5,0.25,\n10,2.5,0.125,0.5\n15,3.5,0.0625";
  auto t = body(f.get("/api/training"));
  CHECK(t["ok"] == true);
  CHECK(t["columns"] == json({"step", "wall_time", "train_loss", "validation_loss"}));
  CHECK(t["rows"] == json::parse(R"([{"step":5,"wall_time":1.5,"train_loss":0.25},
                                     {"step":10,"wall_time":2.5,"train_loss":0.125,"validation_loss":0.5}])"));
  CHECK(t["ranks"][0]["batches"] == 7);
  CHECK(t["more"] == false);
  const auto capped = json::parse(metrics_rows_json(f.dir / "metrics/metrics.csv", -1, 1));
  CHECK(capped["rows"] == json::parse(R"([{"step":5,"wall_time":1.5,"train_loss":0.25}])"));
  CHECK(capped["more"] == true);
  t = body(f.get("/api/training", {{"since", "5"}}));
  CHECK(t["rows"].size() == 1);
  CHECK(t["rows"][0]["step"] == 10);
  for (const std::string s : {"x", "", "-2", "5.5", "99999999999999999999"}) {
    CAPTURE(s);
    CHECK(f.get("/api/training", {{"since", s}}).status == 400);
  }

  const auto buffer = f.get("/api/buffer");
  CHECK(buffer.status == 404);
  CHECK(body(buffer)["error"] == "this study has no training buffer");

  const auto steering = body(f.get("/api/steering"));
  CHECK(steering["parameter_names"] == json({"T0", "T1"}));
  CHECK(steering["points"] == json::parse(R"([
      {"sim":0,"parameters":[100.0,200.0],"origin":"design","state":"completed"},
      {"sim":1,"parameters":[300.0,400.0],"origin":"proposal","state":"running"}])"));
  CHECK(!steering["steering"].contains("provenance"));

  const auto stats = f.get("/api/statistics");
  CHECK(stats.status == 404);
  CHECK(body(stats)["error"].get<std::string>().find("statistics") != std::string::npos);
  CHECK(f.get("/api/nothing").status == 404);
  CHECK(f.get("/etc/passwd").status == 404);
}

TEST_CASE("commands go to the study; bad input is a 400 that asks nothing") {
  fixture f;
  CHECK(body(f.post("/api/jobs/3/kill")) == json::parse(R"({"ok":true,"killed":3})"));
  const auto refused = f.post("/api/jobs/2/kill");
  CHECK(refused.status == 409);
  CHECK(body(refused)["error"] == "job 2 already completed");
  CHECK(f.post("/api/jobs/x/kill").status == 400);
  CHECK(body(f.post("/api/pause"))["paused"] == true);
  CHECK(body(f.post("/api/resume"))["paused"] == false);
  CHECK(body(f.post("/api/job_limit", R"({"job_limit": 3})"))["job_limit"] == 3);
  CHECK(f.study->calls == std::vector<std::string>{"kill 3", "kill 2", "pause", "resume", "set job_limit 3"});
  for (const std::string b : {"", "3", "{", R"({"job_limit": 0})", R"({"job_limit": "3"})",
                              R"({"job_limit": 2.5})", R"({"limit": 3})", "[1]"}) {
    CAPTURE(b);
    const auto r = f.post("/api/job_limit", b);
    CHECK(r.status == 400);
    CHECK(body(r)["ok"] == false);
  }
  CHECK(f.study->calls.size() == 5);
  // The wrong method: 405 with Allow.
  const auto get_pause = f.get("/api/pause");
  CHECK(get_pause.status == 405);
  CHECK(get_pause.headers.at("Allow") == "POST");
  CHECK(f.post("/api/status").status == 405);
  CHECK(f.get("/api/jobs/3/kill").status == 405);
}

TEST_CASE("a finished study refuses commands") {
  fixture f;
  f.study->is_live = false;
  CHECK(body(f.get("/api/status"))["live"] == false);
  for (const auto& p : {"/api/pause", "/api/resume", "/api/jobs/3/kill"}) {
    const auto r = f.post(p);
    CHECK(r.status == 409);
    CHECK(body(r)["error"].get<std::string>().rfind("the study has ended", 0) == 0);
  }
  CHECK(f.post("/api/job_limit", R"({"job_limit": 2})").status == 409);
  CHECK(f.study->calls == std::vector<std::string>{"status", "jobs "});  // no command reached it
}

TEST_CASE("pieces: tokens, job ids, answer statuses") {
  using v = std::vector<std::string>;
  CHECK(request_tokens({"GET", "/", {}, "bearer  abc ", "", ""}, "c") == v{"abc"});
  CHECK(request_tokens({"GET", "/", {}, "", "x=1;c=t2; c_1=t4", ""}, "c") == v{"t2"});
  CHECK(request_tokens({"GET", "/", {{"token", "t3"}}, "", "c=t2", ""}, "c") == v{"t3", "t2"});
  CHECK(request_tokens({"GET", "/", {}, "", "", ""}, "c").empty());
  std::uint32_t id = 0;
  CHECK((parse_job_id("4294967295", id) && id == 4294967295u));
  CHECK(!parse_job_id("+5", id));
  CHECK(status_of_answer(R"({"ok":true})") == 200);
  CHECK(status_of_answer(R"({"ok":false,"error":"no job 5"})") == 404);
  CHECK(status_of_answer(R"({"ok":false,"error":"the launcher did not answer status: timeout"})") == 503);
  CHECK(status_of_answer(R"({"ok":false,"error":"server rank 1 did not answer within 15 s"})") == 409);
  CHECK(status_of_answer("not json") == 502);
}
