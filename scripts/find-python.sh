#!/usr/bin/env bash
# Prints the path of a working CPython for one runtime: `find-python.sh platform` finds the
# newest 3.13 or 3.12 (the platform's runtime), `find-python.sh assistant` a 3.10 (Rasa 3.6
# runs on Python <= 3.10). PATH first, then pyenv's versions folder, then /usr. Exits 1 with
# an explanation when there is none.
set -u
case "${1:-}" in
  platform) versions=(3.13 3.12) ;;
  assistant) versions=(3.10) ;;
  *) echo "usage: $0 platform|assistant" >&2; exit 2 ;;
esac
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for version in "${versions[@]}"; do
  candidates=("python$version")
  for dir in "$pyenv_root"/versions/"$version"*/bin; do candidates+=("$dir/python$version"); done
  candidates+=("/usr/local/bin/python$version" "/usr/bin/python$version")
  for candidate in "${candidates[@]}"; do
    major_minor=${version/./, }
    if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != ($major_minor))" >/dev/null 2>&1; then
      command -v "$candidate"
      exit 0
    fi
  done
done
echo "error: no Python ${versions[*]} found for the $1 runtime." >&2
echo "       Install one (for example: pyenv install ${versions[0]}) and run make again." >&2
exit 1
