#!/usr/bin/env bash
# dual_write_control.sh — drop-in replacement for the operators' old script of the same
# name (runbook.md, "Dual-write migration"). Same commands, arguments and options; the work
# is done by `dualwrite` (its legacy_bridge commands), which this script only calls.
#
#   dual_write_control.sh [--profile NAME] [--config PATH]
#                         [--backend local|docker|docker-compose|podman]
#                         [--podman-image IMAGE] <command> [args] [dualwrite options]
#
# What it does, where the old script and dualwrite differ:
# - Backend. With no --backend the old script auto-detected a real Supra CLI (a `supra` on
#   PATH, then Docker, then Podman). dualwrite's own default is its embedded simulator
#   (`sim`), so this script passes `--backend auto` unless told otherwise:
#   --backend wins, else $DUALWRITE_BACKEND (any dualwrite backend, `sim` included),
#   else `auto`. `dualwrite` prints which backend it picked and why.
# - docker / docker-compose: both use dualwrite's docker backend (the docker SDK, honouring
#   DOCKER_HOST): exec into the running container `supra_cli`, or else into the container of
#   compose service `supra_cli` (found by its label). The old `docker compose run --rm`
#   one-shot is not used; pass --podman-image/--image IMAGE for one-shot containers.
# - podman: with --podman-image IMAGE, one-shot `podman run --rm` containers per call, with
#   ./configs and ./move_workspace mounted at /supra/configs and /supra/move_workspace and
#   SUPRA_HOME=/supra/configs, as the old script ran them; PODMAN_EXTRA_ARGS and
#   PODMAN_VOLUME_SUFFIX (e.g. ":Z") are read from the environment by dualwrite. Without
#   --podman-image: `podman exec` into the running container `supra_cli`.
# - Booleans are true|false|1|0 (any case), hashes hex with or without 0x (any case).
# - Anything after the command's arguments that dualwrite understands is passed on (e.g.
#   --json, --summary FILE for set, --timeout SECONDS, --container NAME).
# - Exit codes are dualwrite's: 0 ok, 1 mismatch, 2 bad input or usage, 3 backend failed or
#   unreachable (also: dualwrite itself cannot be found), 4 the chain aborted the transaction.
#
# dualwrite is found on PATH, else run as `python3 -m dualwrite` (the package must be
# importable by that python3). Arguments are handed over as an argv array: nothing is
# evaluated or re-split by a shell.
set -euo pipefail

prog="${0##*/}"

usage() {
  cat <<EOF
Usage: $prog [--profile NAME] [--config PATH] [--backend local|docker|docker-compose|podman]
       $(printf '%*s' "${#prog}" '') [--podman-image IMAGE] <command> [args]

Commands:
  init <abort_on_mismatch> <abort_on_missing>
  update-flags <enabled> <abort_on_mismatch> <abort_on_missing>
  set <lottery_id> <expected_hash_hex>
  clear <lottery_id>
  enable-mirror | disable-mirror
  mirror <lottery_id>
  status <lottery_id>
  flags
  pending

Booleans: true|false|1|0. Hashes: hex, with or without 0x.
Backend: --backend, else \$DUALWRITE_BACKEND, else auto (a supra on PATH, then Docker, then Podman).
Podman one-shot mode (--podman-image) mounts ./configs and ./move_workspace; PODMAN_EXTRA_ARGS and
PODMAN_VOLUME_SUFFIX are honoured. Extra dualwrite options may follow the arguments (e.g. --json).
Exit codes: 0 ok, 1 mismatch, 2 bad input, 3 backend failed or unreachable, 4 chain abort.
EOF
}

die_usage() {
  echo "$prog: $*" >&2
  echo "Try '$prog --help'." >&2
  exit 2
}

need_value() {
  # $1 option name, $2 number of remaining words (including the option)
  if (( $2 < 2 )); then
    die_usage "option $1 needs a value"
  fi
}

profile=""
config=""
backend="${DUALWRITE_BACKEND:-auto}"
image=""

while (( $# > 0 )); do
  case "$1" in
    -h|--help)
      usage
      exit 0
      ;;
    --profile)
      need_value "$1" "$#"; profile="$2"; shift 2 ;;
    --profile=*)
      profile="${1#*=}"; shift ;;
    --config)
      need_value "$1" "$#"; config="$2"; shift 2 ;;
    --config=*)
      config="${1#*=}"; shift ;;
    --backend)
      need_value "$1" "$#"; backend="$2"; shift 2 ;;
    --backend=*)
      backend="${1#*=}"; shift ;;
    --podman-image|--image)
      need_value "$1" "$#"; image="$2"; shift 2 ;;
    --podman-image=*|--image=*)
      image="${1#*=}"; shift ;;
    --)
      shift
      break
      ;;
    -*)
      die_usage "unknown option '$1' before the command"
      ;;
    *)
      break
      ;;
  esac
done

if (( $# == 0 )); then
  usage >&2
  exit 2
fi

command="$1"
shift
case "$command" in
  init|update-flags|set|clear|enable-mirror|disable-mirror|mirror|status|flags|pending) ;;
  help)
    usage
    exit 0
    ;;
  *)
    die_usage "unknown command '$command'"
    ;;
esac

case "$backend" in
  local|docker|podman|auto|sim) ;;
  docker-compose) backend="docker" ;;  # the compose service supra_cli, found by its label
  "") backend="auto" ;;
  *) die_usage "--backend '$backend': expected local, docker, docker-compose, podman (or auto, sim)" ;;
esac

opts=(--backend "$backend")
if [[ -n "$profile" ]]; then opts+=(--profile "$profile"); fi
if [[ -n "$config" ]]; then opts+=(--config "$config"); fi
if [[ -n "$image" ]]; then opts+=(--image "$image"); fi

if command -v dualwrite >/dev/null 2>&1; then
  dw=(dualwrite)
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import dualwrite' >/dev/null 2>&1; then
  dw=(python3 -m dualwrite)
else
  echo "$prog: dualwrite is not installed: no 'dualwrite' on PATH and python3 cannot import it" \
       "(pip install dualwrite)" >&2
  exit 3
fi

# the backend options first: options the caller adds after the arguments win (last one counts)
exec "${dw[@]}" "$command" "${opts[@]}" "$@"
