#!/usr/bin/env bash
# apt_install.sh TOOL PACKAGE...: install Debian PACKAGEs that provide TOOL (for messages), as
# root, without starting any service they bring: our tooling runs its own servers.
set -euo pipefail
tool=$1
shift

if ! command -v apt-get >/dev/null; then
    echo "$tool: not installed and no apt-get to install it; install the Debian packages: $*" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "$tool: not installed. Install it with:" >&2
    echo "    sudo apt-get install $*" >&2
    exit 1
fi

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d whether a package may start its service;
# 101 means "no". An existing policy (Docker images ship one) is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

echo "$tool: installing $* with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
