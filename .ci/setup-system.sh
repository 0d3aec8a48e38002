#!/usr/bin/env bash
# Install the Debian packages the tests need, idempotently: each argument is COMMAND:PACKAGE,
# and PACKAGE is installed when COMMAND is not on PATH. Services a package would start are not
# started (policy-rc.d): the tests start the servers they use and stop them.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"  # dockerd and friends live in sbin
missing=()
for spec in "$@"; do
  cmd=${spec%%:*} pkg=${spec#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup-system: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
