#include "apps/melissa-shell/shell_render.hpp"

#include <chrono>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

namespace melissa::shell {
namespace {

using json = nlohmann::json;
using rows = std::vector<std::pair<std::string, std::string>>;

// Times come as seconds since the study started (negative: not yet) or as
// text; epoch seconds are shown as a local date.
std::string format_time(const json& value) {
  if (!value.is_number()) return format_value(value);
  const double t = value.get<double>();
  if (t < 0) return "-";
  if (t > 1e9) {
    const auto seconds = static_cast<std::time_t>(t);
    std::tm local{};
    localtime_r(&seconds, &local);
    char buf[32];
    if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local) > 0) return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", t);
  return buf;
}

bool is_time_key(const std::string& key) {
  const auto ends_with = [&](const char* suffix) {
    const std::string s{suffix};
    return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with("_at") || key == "started" || key == "ended";
}

// Nested objects become dotted keys ("simulations.completed"), so that any
// shape the launcher sends reads as flat lines.
void flatten(const json& value, const std::string& prefix, rows& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, item] : value.items())
      flatten(item, prefix.empty() ? key : prefix + "." + key, out);
    return;
  }
  const auto dot = prefix.rfind('.');
  const auto leaf = dot == std::string::npos ? prefix : prefix.substr(dot + 1);
  out.emplace_back(prefix, is_time_key(leaf) ? format_time(value) : format_value(value));
}

// Known keys first in the given order ("group.*" matches a whole group),
// every other key after them; within one rank keys keep their alphabetical
// order (nlohmann::json objects are sorted), so the output is stable.
std::size_t rank_of(const std::string& key, const std::vector<std::string>& preferred) {
  for (std::size_t i = 0; i < preferred.size(); ++i) {
    const auto& p = preferred[i];
    if (p == key) return i;
    if (p.size() > 2 && p.compare(p.size() - 2, 2, ".*") == 0 &&
        key.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0)
      return i;
  }
  return preferred.size();
}

std::string key_value_lines(rows items, const std::vector<std::string>& preferred) {
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    return rank_of(a.first, preferred) < rank_of(b.first, preferred);
  });
  std::size_t width = 0;
  for (const auto& item : items) width = std::max(width, item.first.size());
  std::string out;
  for (const auto& [key, value] : items) {
    out += key + ":" + std::string(width - key.size() + 1, ' ') + value + "\n";
  }
  return out;
}

rows fields_without_ok(const json& object) {
  rows items;
  for (const auto& [key, value] : object.items()) {
    if (key == "ok") continue;
    flatten(value, key, items);
  }
  return items;
}

const std::vector<std::string> status_order{
    "study", "name", "study.*", "state", "paused", "job_limit",
    "simulations.requested", "simulations.total", "simulations.completed",
    "simulations.running", "simulations.pending", "simulations.failed",
    "simulations.cancelled", "simulations.retries", "simulations.*", "jobs.*",
    "steps_stored", "steps_per_s", "samples_per_s", "server_ranks", "elapsed_s", "output_dir"};

const std::vector<std::string> job_order{
    "id",           "kind",       "sim",      "sim_id",    "attempt",    "state",
    "raw_state",    "exit",       "exit_code", "signal",   "reason",     "submitted_at",
    "started_at",   "ended_at",   "backend_id", "connected", "parameters"};

// The jobs table: the column title and the keys a launcher may use for it.
struct column {
  std::string title;
  std::vector<std::string> keys;
  bool time = false;
  bool exit = false;  // a null exit code with a signal reads "signal N"
};

const std::vector<column>& job_columns() {
  static const std::vector<column> columns{
      {"id", {"id", "job_id"}},
      {"kind", {"kind", "type"}},
      {"sim", {"sim", "sim_id", "simulation"}},
      {"attempt", {"attempt", "attempts"}},
      {"state", {"state"}},
      {"raw state", {"raw_state", "raw", "backend_state"}},
      {"exit", {"exit", "exit_code", "exit_status"}, false, true},
      {"started", {"started", "started_at", "start"}, true},
      {"ended", {"ended", "ended_at", "end"}, true},
  };
  return columns;
}

std::string table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& body) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : body)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) out += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : body) out += line(row);
  return out;
}

// --- training figures (train, buffer, steering) ---

// Losses and rates span decades (0.31, 2.4e-05): significant digits, not
// format_value's two decimals, which would print most losses as 0.
std::string format_significant(const json& value, int digits = 4) {
  if (!value.is_number()) return format_value(value);
  const double x = value.get<double>();
  if (!std::isfinite(x)) return value.dump();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, x);
  return buf;
}

std::string format_fixed(const json& value, int decimals) {
  if (!value.is_number()) return format_value(value);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value.get<double>());
  return buf;
}

// A count sent as a number (integer or not): "1234".
std::string format_count(const json& value) {
  if (value.is_number_float()) return format_fixed(value, 0);
  return format_value(value);
}

std::string format_percent(const json& fraction) {
  if (!fraction.is_number()) return format_value(fraction);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * fraction.get<double>());
  return buf;
}

const json& field(const json& object, const char* key) {
  static const json missing;
  if (!object.is_object()) return missing;
  const auto it = object.find(key);
  return it == object.end() ? missing : *it;
}

std::string rank_name(const json& item) {
  const auto& r = field(item, "rank");
  return r.is_null() ? "?" : format_value(r);
}

std::string error_of(const json& item) {
  const auto& e = field(item, "error");
  return e.is_string() ? e.get<std::string>() : e.dump();
}

// The per-rank objects of a train / buffer answer, or one object when the
// answer is a single rank's figures at the top level.
std::vector<json> rank_items(const json& answer) {
  std::vector<json> items;
  const auto& ranks = field(answer, "ranks");
  if (ranks.is_array()) {
    for (const auto& item : ranks) items.push_back(item.is_object() ? item : json{{"error", item}});
    return items;
  }
  json single = answer;
  single.erase("ok");
  items.push_back(single);
  return items;
}

// Terminal columns of UTF-8 text: one per code point (enough for "σ").
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

std::string aligned_lines(const rows& items, const std::string& indent = "") {
  std::size_t width = 0;
  for (const auto& item : items) width = std::max(width, display_width(item.first));
  std::string out;
  for (const auto& [key, value] : items)
    out += indent + key + ":" + std::string(width - display_width(key) + 1, ' ') + value + "\n";
  return out;
}

// "0:1234 1:3456 2:80": n samples were drawn k times, from the least to the
// most drawn. When that spans more than 12 values (a Reservoir draws each
// sample dozens of times) the counts are summed over ranges of a round width
// ("70-79:42 80-89:61"), about ten of them, so that the line stays short.
std::string compact_histogram(const json& histogram) {
  if (!histogram.is_array() || histogram.empty()) return "-";
  std::vector<double> counts;
  for (const auto& c : histogram) counts.push_back(c.is_number() ? c.get<double>() : 0.0);
  std::size_t lo = 0, hi = counts.size() - 1;
  while (lo < hi && counts[lo] == 0) ++lo;
  while (hi > lo && counts[hi] == 0) --hi;
  // The smallest round width (1, 2, 5, 10, 20, 50, ...) that gives at most
  // ten ranges; one value per range when twelve or fewer values are drawn.
  std::size_t width = 1;
  const auto ranges = [&](std::size_t w) { return hi / w - lo / w + 1; };
  if (hi - lo + 1 > 12) {
    bool found = false;
    for (std::size_t scale = 1; !found; scale *= 10)
      for (std::size_t m : {1, 2, 5})
        if (!found && ranges(m * scale) <= 10) {
          width = m * scale;
          found = true;
        }
  }
  const std::size_t first = lo / width * width;
  std::string out;
  const auto count_text = [](double c) { return format_fixed(json(c), 0); };
  for (std::size_t a = first; a <= hi; a += width) {
    const std::size_t b = std::min(a + width - 1, counts.size() - 1);
    double n = 0;
    for (std::size_t k = a; k <= b; ++k) n += counts[k];
    const auto label = width == 1 ? std::to_string(a)
                                  : std::to_string(a) + "-" + std::to_string(a + width - 1);
    out += (out.empty() ? "" : " ") + label + ":" + count_text(n);
  }
  return out;
}

// Mean and max times sampled: the buffer's own figures, else the histogram's.
std::pair<json, json> repetition_stats(const json& repetitions) {
  json mean = field(repetitions, "mean"), max = field(repetitions, "max");
  const auto& histogram = field(repetitions, "histogram");
  if (histogram.is_array() && (mean.is_null() || max.is_null())) {
    double samples = 0, draws = 0;
    std::size_t top = 0;
    for (std::size_t k = 0; k < histogram.size(); ++k) {
      const double c = histogram[k].is_number() ? histogram[k].get<double>() : 0.0;
      samples += c;
      draws += c * static_cast<double>(k);
      if (c > 0) top = k;
    }
    if (mean.is_null() && samples > 0) mean = draws / samples;
    if (max.is_null()) max = top;
  }
  return {mean, max};
}

}  // namespace

std::string format_value(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "-";
    case json::value_t::boolean: return value.get<bool>() ? "yes" : "no";
    case json::value_t::string: return value.get<std::string>();
    case json::value_t::number_integer: return std::to_string(value.get<std::int64_t>());
    case json::value_t::number_unsigned: return std::to_string(value.get<std::uint64_t>());
    case json::value_t::number_float: {
      const double x = value.get<double>();
      if (!std::isfinite(x) || std::fabs(x) >= 1e15) return value.dump();
      // Two decimals are enough for rates and durations; trailing zeros go.
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.2f", x);
      std::string s = buf;
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
      return s == "-0" ? "0" : s;
    }
    case json::value_t::array: {
      if (value.empty()) return "-";
      const bool scalars = std::all_of(value.begin(), value.end(), [](const json& v) {
        return !v.is_object() && !v.is_array();
      });
      if (!scalars) return value.dump();
      std::string out;
      for (const auto& item : value) {
        if (!out.empty()) out += ", ";
        out += format_value(item);
      }
      return out;
    }
    case json::value_t::object: return value.empty() ? "-" : value.dump();
    default: return value.dump();
  }
}

std::string render_status(const json& answer) {
  return key_value_lines(fields_without_ok(answer), status_order);
}

std::string render_job(const json& answer) {
  // {"ok": true, "job": {...}} or the job's fields at the top level.
  if (answer.contains("job") && answer["job"].is_object()) {
    rows items;
    for (const auto& [key, value] : answer["job"].items()) flatten(value, key, items);
    for (const auto& [key, value] : answer.items())
      if (key != "ok" && key != "job") flatten(value, key, items);
    return key_value_lines(items, job_order);
  }
  return key_value_lines(fields_without_ok(answer), job_order);
}

std::string render_jobs(const json& answer, const std::string& state_filter) {
  if (!answer.contains("jobs") || !answer["jobs"].is_array()) return render_status(answer);
  const auto& jobs = answer["jobs"];
  if (jobs.empty()) return state_filter.empty() ? "no jobs\n" : "no " + state_filter + " jobs\n";

  // Fixed columns keep the table narrow; `job ID` shows every field of a job.
  std::vector<std::string> header;
  for (const auto& c : job_columns()) header.push_back(c.title);
  std::vector<std::vector<std::string>> body;
  for (const auto& job : jobs) {
    std::vector<std::string> row;
    if (!job.is_object()) {
      row.assign(header.size(), "-");
      row[0] = format_value(job);
      body.push_back(std::move(row));
      continue;
    }
    for (const auto& c : job_columns()) {
      std::string cell = "-";
      for (const auto& key : c.keys) {
        if (job.contains(key) && !job[key].is_null()) {
          cell = c.time ? format_time(job[key]) : format_value(job[key]);
          break;
        }
      }
      if (c.exit && cell == "-" && job.contains("signal") && !job["signal"].is_null())
        cell = "signal " + format_value(job["signal"]);
      row.push_back(cell);
    }
    body.push_back(std::move(row));
  }
  const auto n = jobs.size();
  return table(header, body) + std::to_string(n) + (n == 1 ? " job\n" : " jobs\n");
}

std::string render_train(const json& answer) {
  const auto items = rank_items(answer);
  const std::vector<std::string> header{"rank",      "state", "batches", "train loss", "val loss",
                                        "samples/s", "busy",  "buffer/unseen", "lr"};
  std::vector<std::vector<std::string>> body;
  std::string problems;
  json samples_seen, min_validation, elapsed = field(answer, "elapsed_s");
  double total_rate = 0;  // the ranks train side by side: their rates add up
  std::size_t rates = 0;
  for (const auto& item : items) {
    if (item.contains("error")) {
      problems += "rank " + rank_name(item) + ": " + error_of(item) + "\n";
      continue;
    }
    const auto& population = field(item, "buffer_population");
    const auto& unseen = field(item, "buffer_unseen");
    body.push_back({rank_name(item), format_value(field(item, "state")),
                    format_count(field(item, "batches")),
                    format_significant(field(item, "train_loss")),
                    format_significant(field(item, "validation_loss")),
                    format_fixed(field(item, "samples_per_s"), 1),
                    format_percent(field(item, "busy_fraction")),
                    format_count(population) + "/" + format_count(unseen),
                    format_significant(field(item, "learning_rate"), 3)});
    // samples_seen counts every rank's samples: the largest is the freshest.
    const auto& seen = field(item, "samples_seen");
    if (seen.is_number() && (samples_seen.is_null() || seen.get<double>() > samples_seen.get<double>()))
      samples_seen = seen;
    const auto& best = field(item, "min_validation_loss");
    if (best.is_number() && (min_validation.is_null() || best.get<double>() < min_validation.get<double>()))
      min_validation = best;
    if (elapsed.is_null()) elapsed = field(item, "elapsed_s");
    if (field(item, "samples_per_s").is_number()) {
      total_rate += field(item, "samples_per_s").get<double>();
      ++rates;
    }
  }
  std::string out = body.empty() ? "" : table(header, body);
  std::string totals;
  const auto add = [&](const std::string& text) { totals += (totals.empty() ? "" : ", ") + text; };
  if (!samples_seen.is_null()) add("samples seen " + format_count(samples_seen));
  if (rates > 1) add(format_fixed(json(total_rate), 1) + " samples/s in all");
  if (!min_validation.is_null()) add("min validation loss " + format_significant(min_validation));
  if (field(answer, "state").is_string()) add("study " + field(answer, "state").get<std::string>());
  if (elapsed.is_number()) add("elapsed " + format_fixed(elapsed, 1) + "s");
  if (!body.empty() && !totals.empty()) out += totals + "\n";
  return out + problems;
}

std::string render_stats(const json& answer) {
  std::string out;
  for (const auto& item : rank_items(answer)) {
    if (item.contains("error")) {
      out += "rank " + rank_name(item) + ": " + error_of(item) + "\n";
      continue;
    }
    std::string line = "rank " + rank_name(item) + ": " +
                       format_count(field(item, "simulations_folded")) + " simulations folded in";
    if (!field(item, "groups_folded").is_null()) {
      line += ", " + format_count(field(item, "groups_folded")) + " groups";
      const auto& widest = field(item, "widest_sobol_interval");
      line += widest.is_number()
                  ? ", widest Sobol interval " + format_significant(widest.get<double>(), 3) +
                        " (step " + format_value(field(item, "widest_sobol_interval_step")) + ")"
                  : ", no Sobol interval yet";
      const auto& left = field(item, "groups_left_out");
      if (left.is_array() && !left.empty())
        line += ", " + std::to_string(left.size()) + " groups incomplete";
    }
    out += line + "\n";
  }
  return out;
}

std::string render_buffer(const json& answer) {
  std::string out;
  for (const auto& item : rank_items(answer)) {
    if (!out.empty()) out += "\n";
    if (item.contains("error")) {
      out += "rank " + rank_name(item) + ": " + error_of(item) + "\n";
      continue;
    }
    const auto& repetitions = field(item, "repetitions");
    const auto [mean, max] = repetition_stats(repetitions);
    rows lines{
        {"policy", format_value(field(item, "policy"))},
        {"capacity", format_count(field(item, "capacity")) +
                         (field(item, "threshold").is_null()
                              ? ""
                              : " (threshold " + format_count(field(item, "threshold")) + ")")},
        {"population", format_count(field(item, "population")) + " (" +
                           format_count(field(item, "unseen")) + " unseen)"},
        {"inserts", format_count(field(item, "inserts"))},
        {"evictions", format_count(field(item, "evictions"))},
        {"batches", format_count(field(item, "batches")) +
                        (field(item, "samples_drawn").is_null()
                             ? ""
                             : " (" + format_count(field(item, "samples_drawn")) + " samples drawn)")},
        {"times sampled", "mean " + format_significant(mean, 3) + ", max " + format_count(max)},
        {"histogram", compact_histogram(field(repetitions, "histogram")) +
                          "  (times sampled:samples)"},
    };
    if (field(item, "production_over").is_boolean() && field(item, "production_over").get<bool>())
      lines.push_back({"production", "over (every simulation ended)"});
    out += "rank " + rank_name(item) + "\n" + aligned_lines(lines, "  ");
  }
  return out;
}

std::string render_steering(const json& answer) {
  const auto& nested = field(answer, "steering");
  json steering = nested.is_object() ? nested : answer;
  if (!nested.is_object()) steering.erase("ok");
  rows lines;
  const auto take = [&](std::initializer_list<const char*> keys) -> json {
    for (const char* key : keys) {
      if (steering.contains(key)) {
        json v = steering[key];
        steering.erase(key);
        return v;
      }
    }
    return json();
  };
  const auto r = take({"r"});
  lines.emplace_back("r", format_significant(r));
  const auto sigma = take({"sigma", "sigmas"});
  std::string sigma_text;
  if (sigma.is_array()) {
    // One value per member: "0.12, 0.3, ..." (the first 16, then how many more).
    std::size_t i = 0;
    for (const auto& v : sigma) {
      if (i == 16) {
        sigma_text += ", ... (" + std::to_string(sigma.size()) + " members)";
        break;
      }
      // The steering actor sends {"sim": id, "sigma": width} per member.
      if (v.is_object() && v.contains("sigma"))
        sigma_text += std::string(i++ ? ", " : "") + "sim " + format_value(v.value("sim", json())) +
                      ": " + format_significant(v["sigma"], 3);
      else
        sigma_text += (i++ ? ", " : "") + format_significant(v, 3);
    }
    if (sigma.empty()) sigma_text = "-";
  } else if (sigma.is_object()) {
    for (const auto& [member, v] : sigma.items())
      sigma_text += (sigma_text.empty() ? "" : ", ") + member + ": " + format_significant(v, 3);
  } else if (sigma.is_number()) {
    // Breed's draws all start from the configured width (range units).
    lines.emplace_back("σ (each draw)", format_significant(sigma, 3) + " of the range");
  } else {
    sigma_text = format_significant(sigma, 3);
  }
  if (!sigma.is_number()) lines.emplace_back("σ per member", sigma_text);
  const auto resampled = take({"simulations_resampled", "resampled", "resampled_simulations"});
  if (resampled.is_array()) {
    std::string ids;
    for (std::size_t i = 0; i < resampled.size() && i < 20; ++i)
      ids += (i ? ", " : "") + format_value(resampled[i]);
    if (resampled.size() > 20) ids += ", ...";
    lines.emplace_back("resampled simulations",
                       std::to_string(resampled.size()) + (resampled.empty() ? "" : " (" + ids + ")"));
  } else {
    lines.emplace_back("resampled simulations", format_count(resampled));
  }
  const auto epoch_time = take({"last_resampling_time"});  // seconds since the Unix epoch
  const auto last = take({"last_resampling_s", "last_resampling_at", "last_resampling"});
  if (epoch_time.is_number()) {
    const double now = std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    lines.emplace_back("last resampling",
                       format_time(json(std::max(0.0, now - epoch_time.get<double>()))) + " ago");
  } else {
    lines.emplace_back("last resampling",
                       last.is_null() || (last.is_number() && last.get<double>() < 0)
                           ? "never"
                           : last.is_number() ? format_time(last) + " after the start"
                                              : format_value(last));
  }
  // Where each resampled simulation's parameters came from: counted here,
  // listed in <output>/breed-provenance.csv.
  const auto provenance = take({"provenance"});
  if (provenance.is_array()) {
    std::size_t proposal = 0;
    for (const auto& row : provenance)
      if (row.is_object() && row.value("origin", std::string()) == "proposal") ++proposal;
    lines.emplace_back("new points", std::to_string(proposal) + " from the proposal, " +
                                         std::to_string(provenance.size() - proposal) + " uniform");
  }
  // Out-of-bounds draws: in total, then resampling by resampling (the last 5;
  // summary.json keeps them all).
  const auto shrinks = take({"shrinks"});
  const auto fallbacks = take({"fallbacks"});
  if (!shrinks.is_null() || !fallbacks.is_null())
    lines.emplace_back("out of bounds", format_count(shrinks) + " shrinks, " + format_count(fallbacks) +
                                            " draws left at their location");
  const auto history = take({"resampling_history"});
  if (history.is_array()) {
    const std::size_t first = history.size() > 5 ? history.size() - 5 : 0;
    if (first > 0)
      lines.emplace_back("resamplings 1.." + std::to_string(first), "in summary.json");
    for (std::size_t i = first; i < history.size(); ++i) {
      const auto& h = history[i];
      if (!h.is_object()) continue;
      lines.emplace_back(
          "resampling s=" + format_value(field(h, "s")),
          "r " + format_significant(field(h, "r"), 3) + ", population " +
              format_count(field(h, "population")) + ", " + format_count(field(h, "points")) +
              " points (" + format_count(field(h, "proposal")) + " proposal), " +
              format_count(field(h, "shrinks")) + " shrinks, " + format_count(field(h, "fallbacks")) +
              " left at their location");
    }
  }
  take({"kind"});
  // Whatever else rank 0 reports, after the usual figures.
  for (const auto& [key, value] : steering.items()) flatten(value, key, lines);
  return aligned_lines(lines);
}

bool training_over(const json& answer) {
  const auto& state = field(answer, "state");
  if (state.is_string() && state.get<std::string>() == "done") return true;
  const auto& ranks = field(answer, "ranks");
  if (!ranks.is_array() || ranks.empty()) return false;
  return std::all_of(ranks.begin(), ranks.end(), [](const json& item) {
    const auto& s = field(item, "state");
    return s.is_string() && s.get<std::string>() == "done";
  });
}

bool answer_ok(const std::string& json_text) {
  const auto doc = json::parse(json_text, nullptr, false);
  return doc.is_object() && doc.contains("ok") && doc["ok"].is_boolean() && doc["ok"].get<bool>();
}

rendered_answer render_answer(command_kind kind, const std::string& json_text,
                              const std::string& state_filter) {
  const auto doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    const auto shown = json_text.size() > 200 ? json_text.substr(0, 200) + "..." : json_text;
    return {false, "error: the study answered with something that is not a JSON object: " +
                       shown + "\n"};
  }
  if (!answer_ok(json_text)) {
    std::string text = "error: ";
    text += doc.contains("error") && doc["error"].is_string() ? doc["error"].get<std::string>()
                                                              : doc.dump();
    text += "\n";
    if (doc.value("error", json()) == "wrong token")
      text += "  (the token is in the study's shell.json, readable by its owner; --token "
              "overrides it)\n";
    if (doc.contains("help") && doc["help"].is_string()) text += "\n" + doc["help"].get<std::string>();
    return {false, text};
  }
  switch (kind) {
    case command_kind::help:
      return {true, doc.contains("help") && doc["help"].is_string() ? doc["help"].get<std::string>()
                                                                    : help_text()};
    case command_kind::status: return {true, render_status(doc)};
    case command_kind::jobs: return {true, render_jobs(doc, state_filter)};
    case command_kind::job: return {true, render_job(doc)};
    case command_kind::train: return {true, render_train(doc)};
    case command_kind::buffer: return {true, render_buffer(doc)};
    case command_kind::steering: return {true, render_steering(doc)};
    case command_kind::stats: return {true, render_stats(doc)};
    default: break;
  }
  // kill, pause, resume, set, stop: the launcher's message, then any other field.
  std::string text;
  rows rest;
  for (const auto& [key, value] : doc.items()) {
    if (key == "ok") continue;
    if (key == "message" && value.is_string()) {
      text = value.get<std::string>() + "\n";
      continue;
    }
    flatten(value, key, rest);
  }
  text += key_value_lines(rest, {});
  if (text.empty()) text = "ok\n";
  return {true, text};
}

}  // namespace melissa::shell
