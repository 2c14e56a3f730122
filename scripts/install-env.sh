#!/usr/bin/env bash
# Builds one runtime's virtual environment from its lock, exactly (uv pip sync), and puts the
# repository on its path. Used by `make install` and by the container images, so what CI tests
# is what ships. Usage: install-env.sh platform|assistant VENV LOCK
set -euo pipefail
runtime=$1 venv=$2 lock=$3
uv_version=0.13.9
root=$(cd "$(dirname "$0")/.." && pwd)
python=$("$root/scripts/find-python.sh" "$runtime")
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
# uv lives in the platform's environment and resolves both. The assistant's image has no
# platform environment: there uv goes beside the environment being built.
uv=$root/.venv/bin/uv
if [[ ! -x $uv && -x $root/.venv/bin/python ]]; then
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
elif [[ ! -x $uv ]]; then
  "$python" -m pip install --quiet --disable-pip-version-check --target "$venv/.uv" "uv==$uv_version"
  uv=$venv/.uv/bin/uv
fi
"$uv" pip sync --quiet --python "$venv/bin/python" "$lock"
purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$root" > "$purelib/omniclinica.pth"
