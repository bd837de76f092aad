#include "actors/scheduler_backend/scheduler_backend.hpp"

#include <mutex>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

// Who polled last (the launcher): the backend's thread tells it at once
// that a job may have changed. Shared with that thread, hence the lock.
struct change_watcher {
  std::mutex mutex;
  caf::actor poller;
};

struct backend_state {
  std::shared_ptr<scheduler::backend> backend;
  std::shared_ptr<change_watcher> watcher = std::make_shared<change_watcher>();
  static inline const char* name = "scheduler_backend";
};

backend_actor::behavior_type backend_fn(backend_actor::stateful_pointer<backend_state> self,
                                        std::shared_ptr<scheduler::backend> backend) {
  self->state.backend = std::move(backend);
  // The notice is a tick_atom sent anonymously: the launcher polls at once
  // on a tick that does not come from its own timer (launcher.cpp). A
  // restarted actor replaces the listener (the backend object outlives it).
  self->state.backend->set_change_listener([w = self->state.watcher] {
    std::lock_guard lock(w->mutex);
    if (w->poller) caf::anon_send(w->poller, tick_atom::value);
  });
  return {
      [self](submit_job_atom, const scheduler::job_request& request) -> caf::result<std::string> {
        try {
          return self->state.backend->submit(request);
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        }
      },
      [self](poll_atom, const std::vector<std::string>& ids)
          -> caf::result<std::vector<scheduler::job_status>> {
        if (auto sender = caf::actor_cast<caf::actor>(self->current_sender())) {
          std::lock_guard lock(self->state.watcher->mutex);
          self->state.watcher->poller = std::move(sender);
        }
        try {
          return self->state.backend->poll(ids);
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        }
      },
      [self](cancel_atom, const std::string& id) {
        try {
          self->state.backend->cancel(id);
          return true;
        } catch (const std::exception& e) {
          spdlog::warn("cancelling job {} failed: {}", id, e.what());
          return false;
        }
      },
  };
}

}  // namespace

backend_actor spawn_scheduler_backend(caf::actor_system& sys,
                                      std::shared_ptr<scheduler::backend> backend) {
  return sys.spawn<caf::detached>(backend_fn, std::move(backend));
}

std::string backend_error_text(const caf::actor_system& sys, const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) return ctx.get_as<std::string>(0);
  return sys.render(err);
}

}  // namespace melissa
