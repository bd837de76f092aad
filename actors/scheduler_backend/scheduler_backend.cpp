#include "actors/scheduler_backend/scheduler_backend.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

struct backend_state {
  std::shared_ptr<scheduler::backend> backend;
  caf::actor watcher;  // who polled last: told when a job may have changed
  static inline const char* name = "scheduler_backend";
};

backend_actor::behavior_type backend_fn(backend_actor::stateful_pointer<backend_state> self,
                                        std::shared_ptr<scheduler::backend> backend) {
  self->state.backend = std::move(backend);
  // The backend's thread only enqueues a message here (the backend object is
  // touched by this actor's thread alone); a weak address, so that the
  // backend, which outlives a restarted actor, does not keep this one alive
  // (a notice to an actor that is gone is dropped). A restarted actor
  // replaces the listener.
  self->state.backend->set_change_listener([addr = self->address()] {
    if (auto me = caf::actor_cast<caf::actor>(addr)) caf::anon_send(me, job_changed_atom::value);
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
        if (auto sender = caf::actor_cast<caf::actor>(self->current_sender()))
          self->state.watcher = std::move(sender);
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
      [self](job_changed_atom) {
        if (self->state.watcher) caf::anon_send(self->state.watcher, job_changed_atom::value);
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
