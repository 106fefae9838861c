#!/usr/bin/env bash
# Install the Debian packages that building and testing livepatch need, when missing.
# As root this runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
pkgs=(build-essential pkg-config libelf-dev zlib1g-dev libdw-dev libbz2-dev liblzma-dev libcapstone-dev libbpf-dev clang
      libclang-rt-14-dev bpftool libcmocka-dev bats groff-base man-db zsh binutils procps util-linux
      libcap2-bin psmisc iproute2 python3 nginx-light strace python3-jsonschema ansible-core)
missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $st == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if ((EUID != 0)); then
	echo "livepatch: error: missing packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
	exit 2
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
