#!/usr/bin/env bash
# Installs the Debian packages that hold the crate sources crates_demo uses (about 45 crates under
# /usr/share/cargo/registry). Cargo and pybuild read them offline; nothing is downloaded at build time.
set -euo pipefail
packages=(librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-regex-dev
  librust-anyhow-dev librust-thiserror-dev librust-once-cell-dev librust-log-dev librust-memchr-dev
  librust-clap-dev librust-rayon-dev librust-libc-dev)
if dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
