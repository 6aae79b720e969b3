#!/usr/bin/env bash
# Install the Debian 12 packages vpnpool needs to build, test and demo, if any
# is missing.  Needs root (or sudo) only when something must be installed.
set -euo pipefail

pkgs=(build-essential autoconf automake libtool pkg-config
      libconfuse-dev libcmocka-dev libssl-dev openvpn openssl iproute2
      clang libclang-rt-14-dev procps jq passwd libpam-modules logrotate
      iputils-ping util-linux libpq-dev postgresql-15 postgresql-client-15)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
