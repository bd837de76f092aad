// A gradient group over a store the caller made (c10d::HashStore for ranks
// that are threads of one process, in tests; a PrefixStore to share one
// store between groups). Includes torch headers: only for code that already
// uses c10d. (Debian's c10 headers pull in glog, whose CHECK macros clash with
// doctest's: include this before doctest and #undef them.)
#pragma once

#include "actors/trainer/gradient_group.hpp"

#include <torch/csrc/distributed/c10d/Store.hpp>

namespace melissa {

std::shared_ptr<gradient_group> make_gradient_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    const gradient_group_options& options = {});

}  // namespace melissa
