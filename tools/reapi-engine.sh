#!/usr/bin/env bash
# Starts and stops a real REAPI v2 engine for the remote-mode tests: one buildbox-casd
# on 127.0.0.1 serving CAS, ActionCache, ByteStream, Capabilities and (unless
# --cache-only) Execution, which runs each action in a bubblewrap sandbox through
# buildbox-run. The binaries come from tools/install-reapi-engine.sh, or from
# $DTLTO_REAPI_ENGINE_BIN when set.
#
#   reapi-engine.sh start [--cache-only] [--fuse-staging] [--actions-as USER] DIR
#                         [-- EXTRA_CASD_ARGS...]
#       Starts casd with its cache in DIR/cache, its log in DIR/casd.log; writes
#       DIR/pid and DIR/endpoint (grpc://127.0.0.1:PORT) and prints the endpoint.
#       --cache-only: no Execution service (Capabilities say exec disabled, Execute is
#       UNIMPLEMENTED); the same DIR/cache, so the ActionCache entries an earlier
#       executing engine in DIR wrote are served.
#       --actions-as USER: buildbox-run, and so every action, runs as USER, not as
#       the user casd runs as. Started by root, the engine runs its actions as
#       `nobody` unless told otherwise (`--actions-as root` keeps them root), or
#       says on stderr why nobody cannot. casd stages an action's input root by
#       hard links out of its cache only when the action's user is not its own, and
#       copies every file otherwise: with a shipped compiler, 180 MB per action. So
#       a farm's worker runs its actions as a user other than its cache's, and so
#       does this engine when it can, through reapi-engine-run-as (built from
#       tools/reapi-engine-run-as/ by tools/install-reapi-engine.sh, beside casd).
#       DIR is opened to USER's group to search only (mode 0710); USER must reach it
#       and be able to make a bubblewrap sandbox.
#       --fuse-staging: each action's input root is mounted from the cache through
#       FUSE (buildbox-fuse) instead of copied file by file, which saves copying a
#       shipped compiler for every action when actions run as casd's own user (the
#       mount is that user's: actions run as it). Needs /dev/fuse and fusermount3
#       or fusermount.
#   reapi-engine.sh stop DIR
#       Stops the engine of DIR (SIGTERM, then SIGKILL after 10 s) and waits for it.
set -euo pipefail
# A failure inside $(...) fails the script too, not only the substitution.
shopt -s inherit_errexit
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wait_seconds=10
# The most descriptors casd may hold open (see where it starts).
casd_max_files=4096

usage() {
  echo "usage: reapi-engine.sh start [--cache-only] [--fuse-staging] [--actions-as USER] DIR" \
    "[-- EXTRA_CASD_ARGS...] | stop DIR" >&2
  exit 2
}
die() {
  echo "reapi-engine.sh: $*" >&2
  exit 1
}

# True while PID is a process and not a zombie (kill -0 succeeds on zombies, and an
# init that does not reap them, as in some containers, keeps them around).
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}
# True while PID is a live buildbox-casd: a pid file may outlive its process, and the
# pid may have been reused by another program since.
alive_casd() {
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = buildbox-casd ] && alive "$1"
}

# Prints the TCP port PID listens on, if any. casd binds port 0 and the kernel picks
# the port, so it is read back from the process's own sockets. (gRPC sets SO_REUSEPORT:
# two casds told the same fixed port both bind it and share its connections, so
# "find a free port, then pass it" could race into two engines on one port.)
listening_port() {
  local pid="$1" link inodes=" " addr st inode
  # One find for all of casd's (about 270) descriptors: a readlink each takes a second.
  while read -r link; do
    inodes+="${link//[^0-9]/} "
  done < <(find "/proc/$pid/fd" -mindepth 1 -lname 'socket:*' -printf '%l\n' 2>/dev/null)
  # /proc/net/tcp6 too: casd listens on an IPv4-mapped IPv6 socket.
  # Read from a process substitution, not a pipe: leaving the loop early would
  # kill a pipe's writer with SIGPIPE, which pipefail turns into this function's
  # failure, and set -e into the script's silent end (seen on a busy machine, whose
  # socket tables are long).
  while read -r _ addr _ st _ _ _ _ _ inode _; do
    # State 0A is LISTEN; the local address ends in :PORT, in hex.
    if [ "$st" = 0A ] && [ "${inodes#* "$inode" }" != "$inodes" ]; then
      echo "$((16#${addr##*:}))"
      break
    fi
  done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
}

# The setpriv that switches users for the checks below, by its absolute path (empty
# if there is none).
setpriv="$(command -v setpriv 2>/dev/null || true)"

# Runs a command as UID:GID with a PATH of system directories only (root's PATH may
# hold directories that user cannot search, and a search that meets one fails).
as_user() {
  local uid="$1" gid="$2"
  shift 2
  PATH=/usr/sbin:/usr/bin:/sbin:/bin "$setpriv" --reuid="$uid" --regid="$gid" \
    --clear-groups -- "$@"
}

# Prints why USER cannot run this engine's actions (FUSE: whether FUSE staging was
# asked for; BIN: the engine's binaries), if it cannot. Opens DIR and the socket's
# directory to USER's group, to search only (mode 0710): USER reaches the sandboxes
# and the socket, lists nothing, and other users reach nothing.
actions_user_problem() {
  local dir="$1" sock="$2" user="$3" fuse="$4" bin="$5" uid gid d
  if ! uid="$(id -u "$user" 2>/dev/null)"; then
    echo "there is no user $user"
    return
  fi
  gid="$(id -g "$user")"
  if [ "$(id -u)" -ne 0 ]; then
    echo "only root runs actions as another user"
    return
  elif $fuse; then
    echo "with --fuse-staging, actions run as casd's user, whose FUSE mount it is"
    return
  elif [ -z "$setpriv" ]; then
    echo "setpriv (util-linux) is missing"
    return
  elif [ ! -x "$bin/reapi-engine-run-as" ]; then
    echo "$bin has no reapi-engine-run-as (tools/install-reapi-engine.sh builds it)"
    return
  fi
  # Root hands USER directories inside DIR: no other user may be able to swap a name
  # on the way there. DIR must be root's, and every directory above it root's and
  # writable by no one else, or sticky (as /tmp is).
  local up="$dir" owner mode
  while :; do
    read -r owner mode < <(stat -c '%u %a' -- "$up")
    if [ "$owner" -ne 0 ]; then
      echo "$up is uid $owner's, not root's: its owner could swap what root hands $user"
      return
    elif [ "$up" != "$dir" ] && (((8#$mode & 8#022) && !(8#$mode & 8#1000))); then
      echo "$up is writable by others: they could swap what root hands $user"
      return
    fi
    [ "$up" = / ] && break
    up="$(dirname "$up")"
  done
  for d in "$dir" "$(dirname "$sock")"; do
    chgrp "$gid" "$d"
    chmod 0710 "$d"
  done
  if ! as_user "$uid" "$gid" test -x "$dir"; then
    echo "$user cannot reach $dir (a directory above it is closed to $user)"
  elif ! as_user "$uid" "$gid" "$(command -v bwrap)" --unshare-all --die-with-parent \
    --ro-bind / / --proc /proc --dev /dev true >/dev/null 2>&1; then
    echo "$user cannot make a bubblewrap sandbox (are unprivileged user namespaces off?)"
  fi
}

# Writes DIR/run-actions, the program casd runs for each action in place of
# buildbox-run: BIN/reapi-engine-run-as with this engine's settings, which runs
# buildbox-run as USER without giving USER any of casd's files (see
# tools/reapi-engine-run-as/src/main.rs). Prints its path.
actions_as_runner() {
  local dir="$1" bin="$2" uid="$3" gid="$4" runner="$2/buildbox-run" bwrap
  bwrap="$(command -v bwrap)"
  # buildbox-run where USER can run it: installed under root's home, it is not. A
  # second name if that is enough, else a copy (whose mode alone changes).
  if ! as_user "$uid" "$gid" test -x "$runner"; then
    mkdir -p "$dir/bin"
    chmod 0755 "$dir/bin"
    rm -f "$dir/bin/buildbox-run"
    ln "$runner" "$dir/bin/buildbox-run" 2>/dev/null || true
    if ! as_user "$uid" "$gid" test -x "$dir/bin/buildbox-run"; then
      rm -f "$dir/bin/buildbox-run"
      cp "$runner" "$dir/bin/buildbox-run"
      chmod 0755 "$dir/bin/buildbox-run"
    fi
    runner="$dir/bin/buildbox-run"
  fi
  # Where root makes USER a directory per action: root's alone, searchable by all.
  mkdir -p "$dir/actions"
  chmod 0711 "$dir/actions"
  # A launcher in sh: casd runs a program without arguments of its own, and dash
  # starts sooner than bash (it starts once per action).
  local word line="exec"
  for word in "$bin/reapi-engine-run-as" "$uid" "$gid" "$(dirname "$bwrap"):/usr/bin:/bin" \
    "$runner" "$dir/actions" --; do
    line+=" '${word//\'/\'\\\'\'}'"
  done
  {
    echo '#!/bin/sh'
    echo "# Written by reapi-engine.sh: buildbox-run as uid $uid, for the buildbox-casd of this directory."
    echo "$line \"\$@\""
  } >"$dir/run-actions.tmp"
  chmod 0755 "$dir/run-actions.tmp"
  mv -f "$dir/run-actions.tmp" "$dir/run-actions"
  echo "$dir/run-actions"
}

start() {
  local cache_only=false fuse=false actions_as="" casd_umask dir
  casd_umask="$(umask)"
  while [ $# -gt 0 ]; do
    case "$1" in
      --cache-only) cache_only=true; shift ;;
      --fuse-staging) fuse=true; shift ;;
      --actions-as) [ $# -ge 2 ] && [ -n "$2" ] || usage; actions_as="$2"; shift 2 ;;
      --) usage ;;
      -*) usage ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || usage
  dir="$1"
  shift
  if [ $# -gt 0 ]; then
    [ "$1" = -- ] || usage
    shift
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/pid" ] && alive_casd "$(cat "$dir/pid")"; then
    die "an engine already runs for $dir (pid $(cat "$dir/pid")): stop it first"
  fi
  rm -f "$dir/pid" "$dir/endpoint"

  local bin
  bin="${DTLTO_REAPI_ENGINE_BIN:-$(bash "$here/install-reapi-engine.sh")}"
  [ -x "$bin/buildbox-casd" ] || die "no buildbox-casd in $bin"

  # Two listeners. casd hands its FIRST --bind address to buildbox-run as the CAS to
  # stage inputs from, and hands it verbatim: "127.0.0.1:0" would be unreachable. So
  # the first is a unix socket (no port to pick, so nothing to race for), and the
  # second is TCP port 0 for clients (the kernel picks a free port; see above).
  # sun_path holds 107 bytes: a longer DIR gets its socket in a short temporary dir.
  local sock="$dir/casd.sock"
  if [ "${#sock}" -gt 100 ]; then
    sock="$(mktemp -d /tmp/reapi-engine.XXXXXX)/casd.sock"
    ln -sfn "$sock" "$dir/casd.sock"
  fi
  rm -f "$sock"
  local args=("--bind=unix:$sock" --bind=127.0.0.1:0 --jobs=2 --cache-failures=false)
  if ! $cache_only; then
    [ -x "$bin/buildbox-run" ] || die "no buildbox-run in $bin"
    command -v bwrap >/dev/null 2>&1 || die "bwrap (Debian's bubblewrap) is missing"
    # The sandbox's / is the action's input root and nothing else of the host: the
    # client uploads the compiler, its libraries and the loader itself. No host bind
    # mount: one on /usr would hide whatever the client put under usr/ in the root.
    # Root runs its actions as nobody unless told, if nobody can; nobody else can
    # switch users.
    local told=true
    if [ -z "$actions_as" ] && [ "$(id -u)" -eq 0 ] && ! $fuse; then
      actions_as=nobody
      told=false
    fi
    local runner="$bin/buildbox-run" problem
    # (A user that is this one needs no switch.)
    if [ -n "$actions_as" ] && [ "$(id -u "$actions_as" 2>/dev/null)" != "$(id -u)" ]; then
      problem="$(actions_user_problem "$dir" "$sock" "$actions_as" "$fuse" "$bin")"
      if [ -z "$problem" ]; then
        runner="$(actions_as_runner "$dir" "$bin" "$(id -u "$actions_as")" \
          "$(id -g "$actions_as")")"
        args+=("--unix-socket-group=$(id -g "$actions_as")" --unix-socket-mode=0660)
        # The cache's directories searchable by USER, who reaches the sandboxes in
        # them: casd makes them with its umask, which may close them.
        casd_umask=022
      elif $told; then
        die "--actions-as $actions_as: $problem"
      else
        echo "reapi-engine.sh: actions run as $(id -un), so casd copies every input root" \
          "into its sandbox: $problem" >&2
      fi
    fi
    args+=("--buildbox-run=$runner")
  fi
  args+=("$@" "$dir/cache")

  # casd looks for buildbox-fuse along PATH and dies on a directory it may not search
  # (EACCES, e.g. root's PATH kept by `su USER`): keep only searchable directories,
  # and none that holds a buildbox-fuse unless FUSE staging is asked for.
  local path="" part
  local -a parts
  IFS=: read -ra parts <<<"$PATH"
  for part in "${parts[@]}"; do
    if [ -n "$part" ] && [ -d "$part" ] && [ -x "$part" ] && [ ! -e "$part/buildbox-fuse" ]; then
      path+="${path:+:}$part"
    fi
  done
  if $fuse; then
    [ -x "$bin/fuse-stager/buildbox-fuse" ] || die "no buildbox-fuse in $bin/fuse-stager"
    [ -c /dev/fuse ] || die "--fuse-staging needs /dev/fuse"
    command -v fusermount3 >/dev/null 2>&1 || command -v fusermount >/dev/null 2>&1 \
      || die "--fuse-staging needs fusermount3 or fusermount (Debian's fuse3)"
    path="$bin/fuse-stager:$path"
  fi

  # casd's child closes every descriptor below the limit, one close(2) each, before it
  # starts an action's runner: 3.4 ms an action under a limit of 20,000, and a
  # container's usual 1,048,576 would cost each action far more than its compile.
  # casd itself holds a few hundred.
  local nofile
  nofile="$(ulimit -Sn)"
  if [ "$nofile" = unlimited ] || [ "$nofile" -gt "$casd_max_files" ]; then
    nofile="$casd_max_files"
  fi
  # stdin, stdout and stderr away from the caller: a test that runs this script and
  # reads its output to the end must not wait for the daemon.
  # A session of its own (setsid, which does not fork here: a background subshell
  # leads no process group): no terminal of the caller's that an action could push
  # input into.
  (umask "$casd_umask" && ulimit -Sn "$nofile" \
    && exec setsid env PATH="$path" "$bin/buildbox-casd" "${args[@]}") \
    </dev/null >"$dir/casd.log" 2>&1 &
  local pid=$! port="" deadline=$((SECONDS + wait_seconds))
  # Should anything below fail, the daemon must not outlive this script unannounced.
  trap 'kill -KILL "$pid" 2>/dev/null; rm -f "$dir/pid"; echo "reapi-engine.sh: start failed (line $LINENO)" >&2' ERR
  # The pid file first, so `stop` finds the daemon even if this script dies waiting.
  # (Renamed into place so a reader never sees a partial file.)
  echo "$pid" >"$dir/pid.tmp" && mv -f "$dir/pid.tmp" "$dir/pid"
  while :; do
    if ! alive "$pid"; then
      rm -f "$dir/pid"
      cat "$dir/casd.log" >&2
      die "buildbox-casd exited before it listened (log above, in $dir/casd.log)"
    elif alive_casd "$pid"; then # (until the forked shell execs casd, it is not yet one)
      port="$(listening_port "$pid")" || port=""
      # The port is ours; also check it accepts a connection.
      if [ -n "$port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
      fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
      cat "$dir/casd.log" >&2
      die "buildbox-casd did not listen within ${wait_seconds}s (log above, in $dir/casd.log)"
    fi
    sleep 0.02
  done
  trap - ERR
  echo "grpc://127.0.0.1:$port" >"$dir/endpoint.tmp" && mv -f "$dir/endpoint.tmp" "$dir/endpoint"
  echo "grpc://127.0.0.1:$port"
}

stop() {
  [ $# -eq 1 ] || usage
  local dir="$1" pid deadline
  [ -f "$dir/pid" ] || die "no engine pid file in $dir"
  pid="$(cat "$dir/pid")"
  if alive_casd "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + wait_seconds))
    local killed=false
    while alive_casd "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        $killed && die "buildbox-casd $pid survived SIGKILL for ${wait_seconds}s"
        echo "reapi-engine.sh: buildbox-casd $pid ignored SIGTERM for ${wait_seconds}s: killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        killed=true
        deadline=$((SECONDS + wait_seconds))
      fi
      sleep 0.02
    done
  fi
  local sock
  if sock="$(readlink "$dir/casd.sock")"; then
    case "$sock" in /tmp/reapi-engine.*/casd.sock) rm -rf "${sock%/casd.sock}" ;; esac
  fi
  rm -f "$dir/pid" "$dir/endpoint" "$dir/casd.sock"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) usage ;;
esac
