#!/usr/bin/env bash
# Installs the Debian 12 packages Tandem needs (idempotent; skips apt when all are present).
set -euo pipefail
PKGS=(cmake ninja-build g++ make pkg-config curl clang-format
      etcd-server etcd-client
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
      libxxhash-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libcpp-httplib-dev
      libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev libfmt-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
