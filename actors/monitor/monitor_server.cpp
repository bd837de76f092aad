#include "actors/monitor/monitor_server.hpp"

#include <cstdio>
#include <stdexcept>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "messages/atomic_file.hpp"

namespace melissa::monitor {
namespace {

http_request to_request(const httplib::Request& req) {
  http_request r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) r.params.emplace(k, v);
  r.authorization = req.get_header_value("Authorization");
  r.cookie = req.get_header_value("Cookie");
  r.body = req.body;
  return r;
}

void to_response(const http_reply& reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [k, v] : reply.headers) res.set_header(k, v);
  res.set_content(reply.body, reply.content_type);
}

}  // namespace

monitor_server::monitor_server(std::shared_ptr<monitor_api> api, std::string host, std::uint16_t port)
    : api_(std::move(api)), server_(std::make_unique<httplib::Server>()), host_(std::move(host)) {
  // (api_->set_port below, once bound: the handlers only read it after start().)
  auto& s = *server_;
  // Small requests only: the API's bodies are a few bytes.
  s.set_payload_max_length(64 * 1024);
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
  s.set_keep_alive_timeout(2);
  const auto handler = [api = api_](const httplib::Request& req, httplib::Response& res) {
    to_response(api->handle(to_request(req)), res);
  };
  for (const char* pattern : {".*"}) {
    s.Get(pattern, handler);
    s.Post(pattern, handler);
    s.Put(pattern, handler);
    s.Delete(pattern, handler);
    s.Patch(pattern, handler);
  }
  // monitor_api never throws; this is the last line of defence for httplib's own.
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string why = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
    }
    spdlog::warn("monitor: {} {} failed: {}", req.method, req.path, why);
    res.status = 500;
    res.set_content(nlohmann::json{{"ok", false}, {"error", why}}.dump(), "application/json");
  });
  // Requests httplib refuses before routing (bad request line, too large a
  // body) get its status with a JSON reason instead of an empty page.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    spdlog::info("monitor: refused a request ({} {}): HTTP {}", req.method, req.path, res.status);
    res.set_content(nlohmann::json{{"ok", false},
                                   {"error", "HTTP " + std::to_string(res.status) +
                                                 ": the request was refused before it was read "
                                                 "(malformed, or a body over 64 KiB)"}}
                        .dump(),
                    "application/json");
  });
  if (port == 0) {
    const int bound = s.bind_to_any_port(host_);
    if (bound <= 0)
      throw std::runtime_error("cannot listen on " + host_ + " (any port) for the monitor");
    port_ = static_cast<std::uint16_t>(bound);
  } else {
    if (!s.bind_to_port(host_, port))
      throw std::runtime_error("cannot listen on " + host_ + ":" + std::to_string(port) +
                               " for the monitor (launcher.monitor_port in use?)");
    port_ = port;
  }
  api_->set_port(port_);
}

monitor_server::~monitor_server() { stop(); }

void monitor_server::start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void monitor_server::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string monitor_server::url(const std::string& url_host, const std::string& token) const {
  const bool v6 = url_host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + url_host + "]" : url_host) + ":" + std::to_string(port_) +
         "/?token=" + token;
}

void write_monitor_file(const std::string& output_dir, const std::string& url, const std::string& host,
                        std::uint16_t port, const std::string& token) {
  const nlohmann::json j{{"url", url}, {"host", host}, {"port", port}, {"token", token}};
  write_file_atomically(output_dir + "/monitor.json", j.dump(2) + "\n", 0600);
}

void remove_monitor_file(const std::string& output_dir) {
  std::remove((output_dir + "/monitor.json").c_str());
}

}  // namespace melissa::monitor
