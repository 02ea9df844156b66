#!/usr/bin/env bash
# Installs what imgspool needs, builds it and starts the daemon in the foreground on the
# embedded default: SQLite + local-folder store under ./var (config: imgspool.example.toml).
# Drop images into ./var/spool/inbox/; Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)" --target imgspool
exec ./build/imgspool run -c imgspool.example.toml
