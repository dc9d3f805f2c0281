#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages boxcar's pipeline uses that this machine lacks, says what it
# installed, and says how to get what no apt repository here has (terraform/tofu, VirtualBox).
#
#   tools/install-prereqs.sh          install what is missing (needs root or sudo)
#   tools/install-prereqs.sh --check  only list what is missing; exit 1 if anything is
set -euo pipefail

# package: what needs it
packages=(
  "packer:bakes the images"
  "qemu-system-x86:bake VMs and the qemu provider"
  "qemu-utils:qemu-img (overlays, image conversion)"
  "debootstrap:the lab profile's base image"
  "fdisk:partitioning the lab base image"
  "e2fsprogs:filesystem of the lab base image"
  "grub-pc-bin:boot loader of the lab base image"
  "grub2-common:boot loader of the lab base image"
  "zstd:cache of the debootstrap result"
  "vde2:vde_switch, the qemu provider's cluster network"
  "openssh-client:ssh into the nodes, ssh-keygen"
  "openssl:cluster CA and certificates"
  "iproute2:network namespaces of the libvirt test"
  "vagrant:virtualbox and libvirt providers"
  "vagrant-libvirt:libvirt provider"
  "libvirt-daemon-system:libvirt provider"
  "libvirt-clients:virsh, for the libvirt provider tests"
  "dnsmasq-base:DHCP of the libvirt management network"
  "shellcheck:lints the VM scripts (tests)"
  "python3-yaml:tests read rendered manifests back as YAML"
  "kubernetes-client:kubectl 1.20 on the host, for the lab cluster (KUBECONFIG=.cluster/<name>/kubeconfig)"
)

# A command already on PATH stands for the package that would install it: another package may own
# it (a kubectl from a cloud SDK conflicts with Debian's kubernetes-client over /usr/bin/kubectl).
declare -A command_of=([kubernetes-client]=kubectl)

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

missing=()
for entry in "${packages[@]}"; do
  name="${entry%%:*}"
  if [[ -n "${command_of[$name]:-}" ]] && command -v "${command_of[$name]}" >/dev/null; then continue; fi
  if ! dpkg-query --show --showformat='${db:Status-Status}' "$name" 2>/dev/null | grep -qx installed; then
    missing+=("$name")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-prereqs: every Debian package boxcar uses is installed"
elif $check_only; then
  echo "install-prereqs: missing: ${missing[*]}"
else
  sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  echo "install-prereqs: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # policy-rc.d keeps package scripts from starting daemons here (libvirtd is started by the tests
  # that need it, inside their own network namespace).
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for entry in "${packages[@]}"; do
    name="${entry%%:*}"
    for installed in "${missing[@]}"; do
      [[ "$installed" == "$name" ]] && echo "  installed $name ($(dpkg-query --show --showformat='${Version}' "$name")): ${entry#*:}"
    done
  done
fi

if ! command -v terraform >/dev/null && ! command -v tofu >/dev/null; then
  cat <<'NOTE'
install-prereqs: terraform or tofu is not installed and no apt repository here has it; cluster:up needs one.
  OpenTofu: https://opentofu.org/docs/intro/install/ (a .deb or standalone binary);
  Terraform: https://developer.hashicorp.com/terraform/install. TERRAFORM_BINARY_NAME=tofu picks OpenTofu.
NOTE
fi
if ! command -v VBoxManage >/dev/null; then
  cat <<'NOTE'
install-prereqs: VirtualBox is not installed (not in Debian); only the virtualbox provider and builder need it.
  Oracle's apt repository: https://www.virtualbox.org/wiki/Linux_Downloads
NOTE
fi

if $check_only && [[ ${#missing[@]} -gt 0 ]]; then exit 1; fi
