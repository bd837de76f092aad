// Which sessions the launcher issued: one (attempt, ticket) per simulation,
// the latest attempt's. A client proves it is the job the launcher started by
// presenting that ticket in its hello (MELISSA_TICKET in its environment).
// Plain C++, no CAF; the aggregator of each server rank owns one.
//
// Cost: one hash-map entry per simulation that has had a job (a ticket is
// forgotten once its attempt ends). Not thread safe (one actor owns it).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace melissa {

class session_tickets {
 public:
  enum class verdict {
    accepted,  // issued to this (sim, attempt), and it is running
    unknown,   // nothing issued yet: the launcher's notice may still be on its way
    refused,   // a wrong ticket, a superseded or ended attempt
  };
  struct check_result {
    verdict outcome = verdict::refused;
    std::string reason;  // why, unless accepted
  };

  // The launcher started (sim, attempt) with `ticket`; older attempts of sim are superseded.
  void issue(std::uint32_t sim, std::uint32_t attempt, std::string ticket);
  // The job of (sim, attempt) ended: its ticket opens no further session.
  void revoke(std::uint32_t sim, std::uint32_t attempt);
  check_result check(std::uint32_t sim, std::uint32_t attempt, const std::string& ticket) const;

 private:
  struct issued {
    std::uint32_t attempt = 0;
    std::string ticket;  // empty once revoked
  };
  std::unordered_map<std::uint32_t, issued> latest_;
};

}  // namespace melissa
