#!/usr/bin/env bash
# Browser tests drive Debian's chromium. Install it when it is missing and we may (root with
# apt); otherwise say so: the tests then skip, except under CI=true where they fail.
set -u
[[ -x /usr/bin/chromium ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "warning: could not install chromium; browser tests will be skipped (or fail under CI=true)."
else
  echo "warning: /usr/bin/chromium is missing and cannot be installed here; browser tests will be skipped."
fi
exit 0
