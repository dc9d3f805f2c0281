#!/usr/bin/env bash
# Builds the lab base image: a bootable Debian qcow2 made with debootstrap on this host (no VM, no
# network inside a guest). Runs as root (debootstrap, loop devices, mount, chroot).
#
#   debootstrap-image.sh --output PATH --public-key FILE [--suite S] [--mirror URL] [--size SIZE] [--include a,b]
#
# Every option may come from the environment instead: BOXCAR_SUITE, BOXCAR_MIRROR, BOXCAR_OUTPUT,
# BOXCAR_DISK_SIZE, BOXCAR_PUBLIC_KEY, BOXCAR_INCLUDE. A rerun with the same output rebuilds it; the
# debootstrap result is cached per suite+mirror+package list, so reruns skip the slow part.
set -euo pipefail

# The mounts live in a private mount namespace: nobody else's namespace can copy (and so pin) them, and
# they vanish with this process even when it is killed.
if [[ -z "${BOXCAR_PRIVATE_MOUNTS:-}" && $EUID -eq 0 ]]; then
  exec env BOXCAR_PRIVATE_MOUNTS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi

suite="${BOXCAR_SUITE:-bookworm}"
mirror="${BOXCAR_MIRROR:-http://deb.debian.org/debian}"
output="${BOXCAR_OUTPUT:-}"
disk_size="${BOXCAR_DISK_SIZE:-4G}"
public_key="${BOXCAR_PUBLIC_KEY:-}"
extra_include="${BOXCAR_INCLUDE:-}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/boxcar/debootstrap"

# What every lab machine needs to boot, be reached over SSH and be checked. Extra packages come from
# --include; the cache key covers the whole list.
base_include="systemd,systemd-sysv,udev,dbus,kmod,openssh-server,sudo,linux-image-amd64,initramfs-tools,grub-pc-bin,grub2-common,iproute2,iputils-ping,ethtool,procps"

usage() {
  sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "debootstrap-image: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --suite) suite="${2:?--suite needs a value}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a value}"; shift 2 ;;
    --output) output="${2:?--output needs a value}"; shift 2 ;;
    --size) disk_size="${2:?--size needs a value}"; shift 2 ;;
    --public-key) public_key="${2:?--public-key needs a value}"; shift 2 ;;
    --include) extra_include="${2?--include needs a value}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "debootstrap-image: unknown argument '$1'" >&2; usage ;;
  esac
done

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, loop devices, mount, chroot)"
[[ -n "$output" ]] || die "--output (BOXCAR_OUTPUT) is required: the qcow2 file to write"
[[ "$output" == *.qcow2 ]] || die "--output must end in .qcow2, got '$output'"
[[ -n "$public_key" ]] || die "--public-key (BOXCAR_PUBLIC_KEY) is required: the bootstrap public key file"
[[ -f "$public_key" ]] || die "--public-key: no such file '$public_key'"
grep -qE '^(ssh-ed25519|ssh-rsa|ecdsa-sha2-[a-z0-9-]+) [A-Za-z0-9+/=]+( .*)?$' "$public_key" ||
  die "--public-key: '$public_key' is not an OpenSSH public key (one line: type, base64, comment)"
[[ "$suite" =~ ^[a-z]+$ ]] || die "--suite must be a Debian codename such as bookworm, got '$suite'"
[[ "$mirror" =~ ^(https?|file)://[^[:space:]]+$ ]] || die "--mirror must be an http(s):// or file:// URL, got '$mirror'"
[[ "$disk_size" =~ ^[0-9]+[MG]$ ]] || die "--size must look like 4G or 2048M, got '$disk_size'"
[[ -z "$extra_include" || "$extra_include" =~ ^[a-z0-9][a-z0-9.+-]*(,[a-z0-9][a-z0-9.+-]*)*$ ]] ||
  die "--include must be a comma-separated list of Debian package names, got '$extra_include'"
for tool in debootstrap sfdisk losetup partx mkfs.ext4 blkid qemu-img zstd; do
  command -v "$tool" >/dev/null || die "'$tool' is missing; install the Debian packages debootstrap fdisk mount util-linux e2fsprogs qemu-utils zstd"
done

include="$base_include${extra_include:+,$extra_include}"
include="$(tr ',' '\n' <<<"$include" | sort -u | paste -sd, -)"

started=$SECONDS
step() {
  printf '[debootstrap-image] %4ds %s\n' "$((SECONDS - started))" "$*"
}

# Runs a chatty command with its output in the work log; on failure shows the log's tail and stops.
quietly() {
  "$@" >"$work/last.log" 2>&1 || {
    tail -n 40 "$work/last.log" >&2
    die "failed: $*"
  }
}

output="$(realpath -m "$output")"
mkdir -p "$(dirname "$output")"
# The work dir sits beside the output so that the final rename stays on one filesystem.
work="$(mktemp -d "$(dirname "$output")/.debootstrap-image.XXXXXX")"
mnt="$work/mnt"
raw="$work/disk.raw"
loop=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if mountpoint -q "$mnt" 2>/dev/null; then
    umount -R "$mnt" 2>/dev/null || umount -R -l "$mnt" || true
  fi
  if [[ -n "$loop" ]]; then
    partx -d "$loop" 2>/dev/null || true
    losetup -d "$loop" 2>/dev/null || true
  fi
  rm -rf "$work"
  if [[ $status -ne 0 ]]; then
    echo "debootstrap-image: failed after $((SECONDS - started))s (exit $status); nothing was written to $output" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sets $loop and $part for the disk file; extra arguments go to losetup (-r: read-only).
attach_disk() {
  loop="$(losetup -f --show -P "${@:2}" "$1")"
  partx -a "$loop" 2>/dev/null || true
  part="${loop}p1"
  # Without udev (containers) the partition's device node may not appear by itself.
  if [[ ! -b "$part" ]]; then
    local sysfs
    sysfs="/sys/class/block/$(basename "$part")/dev"
    [[ -f "$sysfs" ]] || die "the kernel did not create partition $part of $loop"
    mknod "$part" b "$(cut -d: -f1 "$sysfs")" "$(cut -d: -f2 "$sysfs")"
  fi
}

detach_disk() {
  partx -d "$loop" 2>/dev/null || true
  losetup -d "$loop"
  loop=""
}

# --- 1. disk: partition, filesystem ------------------------------------------------------
step "creating a $disk_size disk and its filesystem"
truncate -s "$disk_size" "$raw"
echo 'label: dos
start=1MiB, type=83, bootable' | sfdisk --quiet "$raw"
attach_disk "$raw"
mkfs.ext4 -q -L boxcar-root "$part"
uuid="$(blkid -s UUID -o value "$part")"
[[ -n "$uuid" ]] || die "could not read the UUID of $part"

mkdir -p "$mnt"
mount "$part" "$mnt"

# --- 2. debootstrap (cached) -------------------------------------------------------------------
# NICs are named by PCI path (enp0s3, enp0s8, enp0s9) as VirtualBox guests name them, also where the
# hypervisor announces hotplug slots (QEMU's i440fx does, which would make them ens3, ens8, ens9). The
# file goes in before debootstrap so that the kernel's initramfs, which renames the NICs first, has it.
link_file='[Match]
OriginalName=*

[Link]
NamePolicy=keep kernel database onboard path slot
AlternativeNamesPolicy=database onboard slot path
MACAddressPolicy=persistent'
cache_key="$(printf 'v2\n%s\n%s\n%s\n%s\n' "$suite" "$mirror" "$include" "$link_file" | sha256sum | cut -c1-16)"
cache_tar="$cache_root/$suite-$cache_key.tar.zst"
if [[ -f "$cache_tar" ]]; then
  step "debootstrap: reusing cached $cache_tar"
else
  step "debootstrap $suite from $mirror (minbase + $include)"
  rootfs="$work/rootfs"
  mkdir -p "$rootfs/etc/systemd/network"
  printf '%s\n' "$link_file" >"$rootfs/etc/systemd/network/99-default.link"
  quietly debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror"
  step "debootstrap: caching the result as $cache_tar"
  mkdir -p "$cache_root"
  # Downloaded packages and package lists would be deleted from the image anyway.
  tar --zstd --numeric-owner --xattrs --xattrs-include='*' --exclude='./var/cache/apt/archives/*.deb' \
    --exclude='./var/lib/apt/lists/*_*' -cpf "$cache_tar.tmp.$$" -C "$rootfs" .
  mv -f "$cache_tar.tmp.$$" "$cache_tar"
  rm -rf "$rootfs"
fi
# Always from the tarball: the image is the same whether or not the cache was warm.
tar --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf "$cache_tar" -C "$mnt"

# --- 3. configure the root filesystem ----------------------------------------------------------
step "configuring the root filesystem"
mount --bind /dev "$mnt/dev"
mount --bind /dev/pts "$mnt/dev/pts"
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$mnt/etc/fstab"
in_root() {
  chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}

echo "boxcar" >"$mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tboxcar\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$mnt/etc/hosts"
printf 'deb %s %s main\n' "$mirror" "$suite" >"$mnt/etc/apt/sources.list"

# Only the NAT NIC is configured here: cluster:up gives enp0s8 its static address, and enp0s9 belongs to VPP.
mkdir -p "$mnt/etc/systemd/network"
cat >"$mnt/etc/systemd/network/10-enp0s3.network" <<'EOF'
[Match]
Name=enp0s3

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
# Boot must not wait for the unconfigured NICs.
mkdir -p "$mnt/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$mnt/etc/systemd/system/systemd-networkd-wait-online.service.d/boxcar.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --interface=enp0s3 --timeout=60
EOF

# Host keys are made on each clone's first boot: clones of one image must not share them.
rm -f "$mnt"/etc/ssh/ssh_host_*
cat >"$mnt/etc/systemd/system/boxcar-ssh-host-keys.service" <<'EOF'
[Unit]
Description=Generate this machine's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
EOF
# Only an ed25519 host key: an RSA one takes seconds to make under TCG on every first boot.
cat >"$mnt/etc/ssh/sshd_config.d/boxcar.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
EOF

quietly in_root systemctl enable systemd-networkd.service ssh.service boxcar-ssh-host-keys.service
quietly in_root systemctl set-default multi-user.target
# Snapshot scrubbing of ext4 on LVM: there is no LVM here, and under TCG it costs seconds of each boot.
quietly in_root systemctl mask e2scrub_reap.service e2scrub_all.timer

if ! in_root id vagrant >/dev/null 2>&1; then
  in_root useradd --create-home --shell /bin/bash --user-group vagrant
fi
in_root usermod --password '*' vagrant # no password: key login only
quietly in_root passwd --lock root
printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n' >"$mnt/etc/sudoers.d/vagrant"
chmod 0440 "$mnt/etc/sudoers.d/vagrant"
install -d -m 0700 "$mnt/home/vagrant/.ssh"
install -m 0600 "$public_key" "$mnt/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh

cat >"$mnt/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=1 biosdevname=0"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
GRUB_DISABLE_OS_PROBER=true
EOF

# --- 4. boot loader ----------------------------------------------------------------------------
step "installing grub"
quietly in_root grub-install --target=i386-pc --recheck "$loop"
quietly in_root update-grub
# Without udev there is no /dev/disk/by-uuid, so grub-mkconfig writes the loop device as root=.
sed -i -E "s#root=/dev/loop[0-9]+p1#root=UUID=$uuid#g" "$mnt/boot/grub/grub.cfg"
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || die "grub.cfg has no root=UUID=$uuid line"
if grep -q '/dev/loop' "$mnt/boot/grub/grub.cfg"; then die "grub.cfg still names a loop device"; fi

# --- 5. clean what must differ per clone or must not ship ---------------------------------------
step "cleaning machine identity, caches and logs"
: >"$mnt/etc/machine-id"
mkdir -p "$mnt/var/lib/dbus"
rm -f "$mnt/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$mnt/var/lib/dbus/machine-id"
rm -rf "$mnt"/var/cache/apt/*.bin "$mnt"/var/cache/apt/archives/*.deb "$mnt"/var/cache/apt/archives/partial/*
rm -rf "$mnt"/var/lib/apt/lists/*
find "$mnt/var/log" -type f -delete
rm -rf "$mnt"/tmp/* "$mnt"/var/tmp/* "$mnt/root/.bash_history" "$mnt/home/vagrant/.bash_history" "$mnt/var/lib/systemd/random-seed"
umount -R "$mnt"
detach_disk

# Check the disk file as qemu-img will read it: a filesystem that is not clean boots read-only.
step "checking the filesystem"
attach_disk "$raw" -r
quietly e2fsck -fn "$part"
detach_disk

# --- 6. convert into the qcow2 -----------------------------------------------------------------
# Not compressed: only the base layer's bake reads it, and it copies the image first; zlib over it
# cost 30-40 s of one core on every new base image.
step "converting to a qcow2"
qemu-img convert -O qcow2 "$raw" "$work/image.qcow2"
mv -f "$work/image.qcow2" "$output"
step "done: $output ($(du -h "$output" | cut -f1))"
