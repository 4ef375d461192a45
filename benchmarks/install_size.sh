#!/usr/bin/env bash
# Light vs full install of numpyro-slic (README, "Install"): for each, a fresh venv, pip upgraded,
# then `pip install --no-cache-dir` of the clone (light) or the clone's [all] extra (full); prints
# the install's wall time, the size of site-packages (pip included) and the number of packages.
#   benchmarks/install_size.sh [clone dir, default: this repository] [work dir, default: a temp dir]
set -u
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=${2:-$(mktemp -d)}
for kind in light full; do
  venv="$work/$kind"
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip > /dev/null 2>&1
  spec="$src"; [ "$kind" = full ] && spec="$src[all]"
  start=$(date +%s.%N)
  "$venv/bin/pip" install --no-cache-dir -q "$spec" > "$work/$kind.log" 2>&1; rc=$?
  end=$(date +%s.%N)
  site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  echo "$kind rc=$rc seconds=$(python3 -c "print(round($end - $start, 1))") site_packages=$(du -sm "$site" | cut -f1)MB" \
       "packages=$("$venv/bin/pip" list 2>/dev/null | tail -n +3 | wc -l)"
done
