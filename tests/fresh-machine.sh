#!/bin/bash
# Runs the README's first command, ./packaging/quickstart.sh, on a fresh
# Debian 12: debootstraps a minimal bookworm (--variant=minbase, nothing else
# preinstalled) into its own folder, copies the work tree in (the files
# `git ls-files -co --exclude-standard` lists, without build folders) and runs
# the quickstart there as root under chroot. It catches packages that
# packaging/install-deps.sh forgets but a developer machine or CI has anyway.
# Needs root (debootstrap, mount, chroot); installs debootstrap if missing.
#   FRESH_DIR=DIR    the chroot folder (default build/fresh-machine); it must be
#                    absent, empty or made by an earlier run of this script
#   KEEP=1           keep the chroot afterwards (to look around with chroot DIR)
#   MIRROR=URL       Debian mirror (default http://deb.debian.org/debian)
#   SECURITY_MIRROR=URL  (default http://deb.debian.org/debian-security)
#   FRESH_TIMEOUT=S  seconds the quickstart may take in the chroot (default 900)
set -euo pipefail
case ${FRESH_DIR:-} in '' | /*) ;; *) FRESH_DIR=$PWD/$FRESH_DIR ;; esac
cd "$(dirname "$0")/.."
FRESH=${FRESH_DIR:-$PWD/build/fresh-machine}
SRC=$PWD
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
MARK=.coffer-fresh-machine
t0=$(date +%s)

say() { echo "fresh-machine: $*"; }
die() { echo "fresh-machine: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount and chroot need it)"
command -v git >/dev/null || die "git is needed to list the files to copy"

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on this machine"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || die "could not install debootstrap with apt-get"
fi

mkdir -p -- "$FRESH"
ROOT=$(cd "$FRESH" && pwd -P)
case $ROOT in
  /) die "FRESH_DIR must not be /" ;;
  *[[:space:]]*) die "FRESH_DIR must not contain white space: $ROOT" ;;
esac
LOG=$(mktemp /tmp/coffer-fresh-machine.XXXXXX)

# Every mount point under $ROOT, deepest first.
mounts_under() {
  awk -v r="$ROOT" 'index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_all() {
  local m
  for m in $(mounts_under); do
    umount "$m" 2>/dev/null || umount -l "$m" || echo "fresh-machine: could not unmount $m" >&2
  done
}
# Removes the chroot, never through a mount (rm --one-file-system, and only
# once nothing is mounted under it any more).
remove_root() {
  if [ -n "$(mounts_under)" ]; then
    echo "fresh-machine: still mounted under $ROOT, not removing it:" >&2
    mounts_under >&2
    return 1
  fi
  find "$ROOT" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
  rmdir "$ROOT" 2>/dev/null || true
}
qpid=""
own=0  # 1 once $ROOT is known to be ours to unmount and remove
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    say "stopping the quickstart in the chroot"
    kill -TERM "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  if [ "$own" = 1 ]; then
    unmount_all
    if [ "${KEEP:-0}" = 1 ]; then
      say "kept $ROOT (KEEP=1); enter it with: chroot $ROOT /bin/bash"
    else
      remove_root || rc=1
    fi
  fi
  rm -f "$LOG"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A leftover of an earlier run (KEEP=1, or killed): start over. Refuse to
# empty a folder this script did not make.
if [ -n "$(ls -A "$ROOT")" ]; then
  [ -e "$ROOT/$MARK" ] || die "$ROOT is not empty and was not made by this script; set FRESH_DIR to a new folder"
  say "removing the previous chroot in $ROOT"
  own=1
  unmount_all
  remove_root || die "could not remove the previous chroot $ROOT"
  mkdir -p "$ROOT"
fi
touch "$ROOT/$MARK"
own=1

say "debootstrap --variant=minbase $SUITE into $ROOT (mirror $MIRROR)"
t=$(date +%s)
if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$LOG" 2>&1; then
  echo "fresh-machine: error: debootstrap failed; the end of its output:" >&2
  tail -n 30 "$LOG" >&2
  [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
  die "debootstrap of $SUITE from $MIRROR failed (is the mirror reachable?)"
fi
t_debootstrap=$(( $(date +%s) - t ))
say "debootstrap took ${t_debootstrap}s"

# apt sources of a normal bookworm machine, and no services started by dpkg.
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
rm -f "$ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# The work tree as git sees it (tracked and new files, not ignored ones, not
# build folders), including changes not committed yet.
say "copying the work tree to $ROOT/root/coffer"
mkdir -p "$ROOT/root/coffer"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
  case $f in build/* | build-*/* | coffer-demo/*) continue ;; esac
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done | tar -C "$SRC" --null -T - -cf - | tar -C "$ROOT/root/coffer" -xf -

# /proc and /sys; /dev is a private tmpfs with only the usual device nodes
# bound in (not the host's /dev, which a stray rm -rf of the folder could
# empty), plus a devpts instance of its own.
mount -t proc proc "$ROOT/proc"
mount -t sysfs -o ro sysfs "$ROOT/sys"
mount -t tmpfs -o mode=755,nosuid dev "$ROOT/dev"
for n in null zero full random urandom tty; do
  touch "$ROOT/dev/$n"
  mount --bind "/dev/$n" "$ROOT/dev/$n"
done
mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm"
chmod 1777 "$ROOT/dev/shm"
if mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$ROOT/dev/pts" 2>/dev/null; then
  ln -s pts/ptmx "$ROOT/dev/ptmx"
fi
ln -s /proc/self/fd "$ROOT/dev/fd"
ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
ln -s /proc/self/fd/1 "$ROOT/dev/stdout"
ln -s /proc/self/fd/2 "$ROOT/dev/stderr"

say "running ./packaging/quickstart.sh in the chroot, as root"
t=$(date +%s)
rc=0
# In the background and waited for, so that an interrupt reaches the trap at
# once (timeout runs in a process group of its own), which stops it.
timeout "${FRESH_TIMEOUT:-900}" chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c 'cd /root/coffer && ./packaging/quickstart.sh' </dev/null &
qpid=$!
wait "$qpid" || rc=$?
qpid=""
t_quickstart=$(( $(date +%s) - t ))
say "quickstart took ${t_quickstart}s; debootstrap ${t_debootstrap}s; total $(( $(date +%s) - t0 ))s"
[ "$rc" = 124 ] && die "the quickstart did not finish within ${FRESH_TIMEOUT:-900}s"
[ "$rc" = 0 ] || die "the quickstart failed on a fresh $SUITE (exit $rc); rerun with KEEP=1 to look around"
say "ok: the quickstart passes on a fresh Debian 12 (minbase, nothing preinstalled)"
