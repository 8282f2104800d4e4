#!/usr/bin/env bash
# Assembles a busybox root filesystem from Debian's busybox-static: one static binary and a
# symlink per applet, plus the few files a container expects. Usage: make-rootfs.sh DEST
set -euo pipefail
dest=${1:?usage: make-rootfs.sh DEST}
if ! busybox --list 2>/dev/null | grep -qx sh || ! ldd "$(command -v busybox)" 2>&1 | grep -q 'not a dynamic'; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
bb=$(command -v busybox)
mkdir -p "$dest"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,var,home/user}
chmod 1777 "$dest/tmp"
cp "$bb" "$dest/bin/busybox"
for applet in $("$dest/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dest/bin/$applet"
done
cat > "$dest/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dest/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
echo "rootfs ready: $dest"
