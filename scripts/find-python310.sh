#!/usr/bin/env bash
# Prints the path of a working Python 3.10 (Rasa 3.6 supports Python <= 3.10): PATH first,
# then pyenv's versions folder. Exits 1 with an explanation when there is none.
set -u
candidates=(python3.10)
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for dir in "$pyenv_root"/versions/3.10*/bin; do candidates+=("$dir/python3.10"); done
candidates+=(/usr/local/bin/python3.10 /usr/bin/python3.10)
for candidate in "${candidates[@]}"; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
    command -v "$candidate"
    exit 0
  fi
done
echo "error: Python 3.10 not found. Rasa 3.6 runs on Python 3.8-3.10 only." >&2
echo "       Install one (for example: pyenv install 3.10) and run make again." >&2
exit 1
