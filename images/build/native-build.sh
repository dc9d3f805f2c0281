#!/usr/bin/env bash
# Runs a build stage natively on this host, in a chroot made only of pinned Debian packages and with no
# network: debootstrap minbase of the suite plus the stage's toolchain packages (cached per suite, mirror
# and package list), the stage's .deb artifacts installed on top, then the stage's script. Runs as root.
#
#   native-build.sh --script FILE --artifacts DIR --patches DIR --helpers DIR --output DIR
#                   [--suite S] [--mirror URL] [--include a,b] [--env NAME=VALUE]... [--cache DIR]
#
# --cache names a host folder the build may keep between runs (a compiler's content-addressed cache):
# it is mounted at /build/cache and named by $BOXCAR_CACHE. Nothing in it may change what is built.
#
# The output directory is written only when the script succeeded (a rename of a finished directory).
set -euo pipefail

suite=bookworm
mirror=http://deb.debian.org/debian
include=""
script="" artifacts="" patches="" helpers="" output="" build_cache=""
build_env=()
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/boxcar/debootstrap"

die() {
  echo "native-build: $*" >&2
  exit 1
}

original_args=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --script) script="${2:?}"; shift 2 ;;
    --artifacts) artifacts="${2:?}"; shift 2 ;;
    --patches) patches="${2:?}"; shift 2 ;;
    --helpers) helpers="${2:?}"; shift 2 ;;
    --output) output="${2:?}"; shift 2 ;;
    --suite) suite="${2:?}"; shift 2 ;;
    --mirror) mirror="${2:?}"; shift 2 ;;
    --include) include="${2?}"; shift 2 ;;
    --env) build_env+=("${2:?}"); shift 2 ;;
    --cache) build_cache="${2:?}"; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, chroot, mounts)"
for name in script artifacts patches helpers output; do
  [[ -n "${!name}" ]] || die "--$name is required"
done
[[ -f "$script" ]] || die "--script: no such file '$script'"
[[ -d "$artifacts" ]] || die "--artifacts: no such directory '$artifacts'"
[[ "$suite" =~ ^[a-z]+$ ]] || die "--suite must be a Debian codename, got '$suite'"
[[ "$mirror" =~ ^(https?|file)://[^[:space:]]+$ ]] || die "--mirror must be an http(s):// or file:// URL, got '$mirror'"
[[ -z "$include" || "$include" =~ ^[a-z0-9][a-z0-9.+-]*(,[a-z0-9][a-z0-9.+-]*)*$ ]] ||
  die "--include must be a comma-separated list of Debian package names, got '$include'"
for entry in "${build_env[@]}"; do
  [[ "$entry" =~ ^[A-Z][A-Z0-9_]*=[^[:space:]]*$ ]] || die "--env must be NAME=VALUE without spaces, got '$entry'"
done
command -v debootstrap >/dev/null || die "'debootstrap' is missing (Debian package debootstrap)"

started=$SECONDS
step() { printf '[native-build] %4ds %s\n' "$((SECONDS - started))" "$*"; }

include="$(tr ',' '\n' <<<"$include" | sed '/^$/d' | sort -u | paste -sd, -)"
cache_key="$(printf 'build-root v1\n%s\n%s\n%s\n' "$suite" "$mirror" "$include" | sha256sum | cut -c1-16)"
cache_tar="$cache_root/build-root-$suite-$cache_key.tar.zst"
if [[ -f "$cache_tar" ]]; then
  [[ -n "${BOXCAR_PRIVATE_NAMESPACES:-}" ]] || step "build root: reusing cached $cache_tar"
else
  step "build root: debootstrap $suite minbase + ${include:-nothing}"
  mkdir -p "$cache_root"
  bootstrap="$(mktemp -d "$cache_root/.bootstrap.XXXXXX")"
  trap 'rm -rf --one-file-system "$bootstrap"' EXIT
  debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$bootstrap" "$mirror" >"$bootstrap.log" 2>&1 ||
    { tail -n 30 "$bootstrap.log" >&2; die "debootstrap failed"; }
  tar --zstd --numeric-owner --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*_*' \
    -cpf "$cache_tar.tmp.$$" -C "$bootstrap" .
  mv -f "$cache_tar.tmp.$$" "$cache_tar"
  rm -rf --one-file-system "$bootstrap" "$bootstrap.log"
  trap - EXIT
fi

# The build itself runs in private namespaces: its mounts and processes vanish with this process even
# when it is killed, and it has no network at all (every input is in the chroot already). Only the
# debootstrap above, on a cache miss, used the host's network.
if [[ -z "${BOXCAR_PRIVATE_NAMESPACES:-}" ]]; then
  exec env BOXCAR_PRIVATE_NAMESPACES=1 unshare --mount --propagation private --net --pid --fork -- bash "$0" "${original_args[@]}"
fi

output="$(realpath -m "$output")"
mkdir -p "$(dirname "$output")"
work="$(mktemp -d "$(dirname "$output")/.native-build.XXXXXX")"
root="$work/root"
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
  umount "$root/build/cache" 2>/dev/null || umount -l "$root/build/cache" 2>/dev/null || true
  # Never across a mount point: whatever is still mounted under the work dir stays untouched.
  rm -rf --one-file-system "$work"
  [[ $status -eq 0 ]] || echo "native-build: failed after $((SECONDS - started))s (exit $status); nothing was written to $output" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$root"
tar --zstd --numeric-owner -xpf "$cache_tar" -C "$root"

# Device nodes of the chroot's own (no bind mount of the host's /dev: nothing of the host is reachable
# through the build root, and removing the build root can never remove a host device).
rm -rf --one-file-system "${root:?}/dev" && mkdir -m 0755 "$root/dev"
for device in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$device"
  mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t proc proc "$root/proc"
if [[ -n "$build_cache" ]]; then
  mkdir -p "$build_cache" "$root/build/cache"
  mount --bind "$build_cache" "$root/build/cache"
  build_env+=("BOXCAR_CACHE=/build/cache")
fi
mkdir -p "$root/build/in/artifacts" "$root/build/in/patches" "$root/build/scripts" "$root/build/out"
# -L: the inputs may be symlinks into the artifact cache; the build root gets the files themselves.
cp -rL "$artifacts"/. "$root/build/in/artifacts/"
[[ -d "$patches" ]] && cp -rL "$patches"/. "$root/build/in/patches/"
cp -rL "$helpers"/. "$root/build/scripts/"
cp "$script" "$root/build/scripts/build.sh"

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
shopt -s nullglob
debs=("$root"/build/in/artifacts/*.deb)
if [[ ${#debs[@]} -gt 0 ]]; then
  step "toolchain: dpkg --install ${#debs[@]} pinned packages"
  in_root sh -c 'dpkg --install /build/in/artifacts/*.deb' >"$work/dpkg.log" 2>&1 ||
    { tail -n 30 "$work/dpkg.log" >&2; die "installing the pinned packages failed"; }
fi

step "running $(basename "$script")"
in_root "${build_env[@]}" BOXCAR_ARTIFACTS=/build/in/artifacts BOXCAR_PATCHES=/build/in/patches BOXCAR_OUT=/build/out \
  bash /build/scripts/build.sh
umount "$root/proc"
[[ -z "$build_cache" ]] || umount "$root/build/cache"
rm -rf --one-file-system "$output"
mv "$root/build/out" "$output"
step "done: $output"
