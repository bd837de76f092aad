#!/usr/bin/env python3
"""Writes a C++ source that holds the dashboard's files (its page, script and
style, and Debian's Chart.js), so that melissa-run serves them without
looking for an install directory and without any CDN.

usage: embed_assets.py OUTPUT.cpp NAME=FILE...
"""
import sys

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
DELIM = "melissa_asset"

out_path, pairs = sys.argv[1], sys.argv[2:]
parts = ['#include "actors/monitor/monitor_assets.hpp"', "", "namespace melissa::monitor {", "",
         "std::map<std::string, static_asset> dashboard_assets() {",
         "  std::map<std::string, static_asset> assets;"]
for pair in pairs:
    name, path = pair.split("=", 1)
    text = open(path, encoding="utf-8").read()
    if ")" + DELIM + '"' in text:
        sys.exit(f"{path} contains the raw-string delimiter")
    ctype = next((t for ext, t in TYPES.items() if name.endswith(ext)), "application/octet-stream")
    # Raw literals of at most 60000 characters each (compilers cap one literal).
    chunks = [text[i:i + 60000] for i in range(0, len(text), 60000)] or [""]
    body = " + ".join(f'std::string(R"{DELIM}({c}){DELIM}")' for c in chunks)
    parts.append(f'  assets["{name}"] = static_asset{{"{ctype}", {body}}};')
parts += ["  return assets;", "}", "", "}  // namespace melissa::monitor", ""]
open(out_path, "w", encoding="utf-8").write("\n".join(parts))
