# Shared helpers for scripts/serve and scripts/test. Source it; do not run it.

# ensure_packages CMD:PACKAGE ...: installs the Debian PACKAGE of each missing CMD.
ensure_packages() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    if [ "$cmd" = "-" ]; then
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    else
      command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "voipbin: missing packages: ${missing[*]} (install them, or run as root)" >&2; return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "voipbin: missing: ${missing[*]}. No apt-get here: install these Debian packages (or your system's equivalents) by hand." >&2
    return 1
  fi
  echo "voipbin: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages the server needs: cmake builds the bundled libopus; espeak-ng speaks
# `talk` actions without a cloud provider.
SERVER_PACKAGES=(cmake:cmake espeak-ng:espeak-ng)

# ensure_rust: cargo must be there; we cannot install a toolchain for you.
ensure_rust() {
  command -v cargo >/dev/null 2>&1 && return 0
  echo "voipbin: cargo not found: install Rust 1.94 or later (https://rustup.rs)" >&2
  return 1
}
