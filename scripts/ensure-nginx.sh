#!/usr/bin/env bash
# Production mode (`make production`) puts Debian's nginx in front of the web replicas. Install
# it when it is missing and we may (root with apt); otherwise say how and fail: production mode
# cannot start without its proxy.
set -u
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Debian's nginx for the production mode's reverse proxy..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends nginx >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
      && apt-get install -y -q --no-install-recommends nginx >/dev/null 2>&1; } \
    && exit 0
fi
echo "error: nginx is missing and could not be installed here; install it (apt-get install nginx)." >&2
exit 1
