#!/usr/bin/env bash
# Idempotent setup on a fresh Debian machine: apt packages, a virtualenv in .venv, the project.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test and lint tools)
# Under `set -e`, a bare `[ test ] && action` whose test is false is a failing command: when it is
# the last of a script, a function or a command substitution, the caller sees exit code 1 with no
# message. Conditions here are therefore written as `if` statements.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
if [ "${1:-}" = "--dev" ]; then dev=1; fi
# Bounded wait for another apt-get/dpkg (unattended-upgrades on a fresh machine) to finish.
apt_lock_wait=${STAGEKEEPER_APT_LOCK_WAIT:-300}

package_lists() {
  cat scripts/apt-packages.txt
  if [ $dev = 1 ] && [ -f scripts/apt-packages-dev.txt ]; then cat scripts/apt-packages-dev.txt; fi
}

# Runs an apt-get command; while another apt-get or dpkg holds its lock, says so and retries,
# for at most $apt_lock_wait seconds in all, then fails with apt-get's own message.
apt_waiting() {
  local deadline=$((SECONDS + apt_lock_wait)) out
  while true; do
    if out=$("$@" 2>&1); then return 0; fi
    if grep -qiE "could not get lock|unable to acquire the dpkg frontend lock|unable to lock" <<<"$out" \
      && [ $SECONDS -lt $deadline ]; then
      echo "setup: another apt-get or dpkg holds the package lock; waiting (at most ${apt_lock_wait}s)" >&2
      sleep 5
      continue
    fi
    printf '%s\n' "$out" >&2
    echo "setup: $* failed" >&2
    return 1
  done
}

missing=()
while read -r pkg; do
  case "$pkg" in ''|'#'*) continue ;; esac
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then continue; fi
  # Node.js from another source (NodeSource's nodejs carries npm): Debian's npm would conflict with it.
  if [ "$pkg" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$pkg" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  missing+=("$pkg")
done < <(package_lists)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  # apt-get waits for the dpkg lock up to DPkg::Lock::Timeout; the loop also covers the lists
  # lock of `apt-get update`, which older apt versions do not wait for.
  apt=("${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$apt_lock_wait")
  apt_waiting "${apt[@]}" update -qq
  apt_waiting "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ $dev = 1 ]; then scripts/vcsim.sh build; fi
# The OpenID Connect provider for the single sign-on tests, as scripts/oidc/package-lock.json pins it.
if [ $dev = 1 ] && [ ! -d scripts/oidc/node_modules/oidc-provider ]; then
  (cd scripts/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.stagekeeper-installed
extras=.
if [ $dev = 1 ]; then
  stamp=$stamp-dev
  extras='.[dev]'
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e "$extras"
  touch "$stamp"
fi
