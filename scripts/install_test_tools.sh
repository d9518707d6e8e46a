#!/usr/bin/env bash
# What the tests need beyond PostgreSQL: Debian's Chromium for the browser test (Playwright
# drives /usr/bin/chromium; its own browser download is not used) and Redis for the Celery test.
# Quiet no-op when both are there. A Redis service the package would start is not started.
set -euo pipefail

packages=()
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
command -v redis-server >/dev/null || packages+=(redis-server)
[[ ${#packages[@]} -eq 0 ]] && exit 0
"$(dirname "$0")/apt_install.sh" install_test_tools "${packages[@]}"
