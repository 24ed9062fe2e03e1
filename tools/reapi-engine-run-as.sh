#!/usr/bin/env bash
# buildbox-run as another user, for a buildbox-casd that runs as root; started by
# casd, through the launcher tools/reapi-engine.sh writes, once per action:
#
#   reapi-engine-run-as.sh UID GID SETPRIV PATH RUNNER WORK -- BUILDBOX_RUN_ARGS...
#
# casd stages an action's input root by hard links out of its cache only for a
# runner whose user is not casd's own (else it copies every file), so this runs
# RUNNER (buildbox-run) as UID:GID, with PATH, through SETPRIV.
#
# casd writes the action into a private directory of its own and expects the result
# there. That directory stays root's: root must never create, write or chown a file
# by name in a directory another user can write, nor read one by a path that user
# controls (a link put in the way would aim root at any file). So root makes the
# user a directory in WORK (root's alone, searchable by all), copies the action in
# while that directory is still root's, and only then hands both over; RUNNER runs
# there; its result comes back read by a process running as the user (which can
# read nothing of root's) and written by root into casd's directory only. Anything
# running as the user could tamper with the action while it runs (it could anyway:
# same user); none of it can reach root. Each step is as few processes as it can
# be: they are paid on every action.
set -euo pipefail
shopt -s inherit_errexit
[ $# -ge 7 ] && [ "$7" = -- ] || {
  echo "usage: reapi-engine-run-as.sh UID GID SETPRIV PATH RUNNER WORK -- ARGS..." >&2
  exit 2
}
uid="$1" gid="$2" setpriv="$3" path="$4" runner="$5" work="$6"
shift 7

# The user's own command; --pdeathsig: it dies with this script, however this ends.
as_user() {
  PATH="$path" "$setpriv" --reuid="$uid" --regid="$gid" --clear-groups --pdeathsig KILL -- "$@"
}

private="$(mktemp -d "$work/action.XXXXXX")"
trap 'rm -rf -- "$private"' EXIT
# RUNNER's arguments: its files in the user's directory. casd reads back the result
# and, when buildbox-run fails, the status it writes beside it.
args=() result=""
for arg; do
  case "$arg" in
    --action=*) install -m 0600 -o "$uid" -g "$gid" -- "${arg#*=}" "$private/action"
      args+=("--action=$private/action") ;;
    --action-result=*) result="${arg#*=}"; args+=("--action-result=$private/result") ;;
    # RUNNER puts the command's stdout and stderr into CAS itself, and names them
    # in the result: those files need not come back.
    --stdout-file=* | --stderr-file=* | --partial-execution-metadata-file=?*)
      option="${arg%%=*}"; args+=("$option=$private/${option#--}") ;;
    *) args+=("$arg") ;;
  esac
done
chown "$uid:$gid" "$private"

# RUNNER as a child, not exec'd: the result comes back after it. casd stops an
# action by signalling this process: pass it on.
# (A simple command, not as_user: a function in the background would be a subshell
# between this script and RUNNER, and RUNNER's death with this script would not come.)
PATH="$path" "$setpriv" --reuid="$uid" --regid="$gid" --clear-groups --pdeathsig KILL -- \
  "$runner" "${args[@]}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM INT HUP
status=0
while :; do
  wait "$child" && status=0 || status=$?
  # wait returns early when a trapped signal arrives; the child may still run.
  kill -0 "$child" 2>/dev/null || break
done
trap - TERM INT HUP

if [ -n "$result" ]; then
  for name in result result.error-status; do
    if [ -e "$private/$name" ]; then
      back="$result${name#result}"
      as_user cat -- "$private/$name" >"$back"
    fi
  done
fi
exit "$status"
