// The message of the config_error that parsing `text` as "s.toml" throws, or
// "no error": how the config tests assert error texts.
#pragma once

#include <string>

#include "config/study.hpp"

inline std::string error_of(const std::string& text) {
  try {
    melissa::config::parse_study(text, "s.toml");
  } catch (const melissa::config::config_error& e) {
    return e.what();
  }
  return "no error";
}
