#!/usr/bin/env bash
# Build the aftershock base rootfs (Debian bookworm, minbase + images/base/packages
# + consul from bullseye) and write it as an uncompressed tar to OUT_TAR.
#
#   usage: mkrootfs.sh OUT_TAR
#
# Needs root and debootstrap. The Debian mirror is $DEBIAN_MIRROR if set, else it
# is read at run time from the host's apt configuration. No mirror is hard-coded.
# The tar is written to OUT_TAR.partial and renamed to OUT_TAR on success.
set -euo pipefail

SUITE=bookworm
CONSUL_SUITE=bullseye
CONSUL_PKG=consul
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PACKAGES_FILE="$HERE/packages"
START=$SECONDS

log() { printf '[mkrootfs %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[mkrootfs] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUT_TAR"
OUT=$1
OUT_DIR="$(dirname "$OUT")"
[ -d "$OUT_DIR" ] || die "output directory $OUT_DIR does not exist"
[ -r "$PACKAGES_FILE" ] || die "package list $PACKAGES_FILE not found"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need root)"

is_debian() { [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }

# --- debootstrap --------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
    if is_debian; then
        log "debootstrap missing: apt-get install -y debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2 \
            || die "apt-get install -y debootstrap failed; install the Debian package 'debootstrap' by hand"
    else
        die "debootstrap is not installed: install 'debootstrap' (and 'debian-archive-keyring', 'curl', 'xz-utils') with your package manager"
    fi
fi
command -v curl >/dev/null 2>&1 || [ -x /usr/lib/apt/apt-helper ] \
    || die "need curl (or apt's /usr/lib/apt/apt-helper) to fetch the consul package"
command -v xz >/dev/null 2>&1 || command -v gzip >/dev/null 2>&1 \
    || die "need xz (package xz-utils) or gzip to read the package index"

# --- mirror -------------------------------------------------------------------
# Print the first mirror URI found in the host's apt configuration, preferring an
# entry whose suites include $SUITE (so that security/updates entries lose).
mirror_from_apt() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            # deb822 stanzas: Types/URIs/Suites/Enabled fields, blank-line separated.
            awk -v suite="$SUITE" '
                function flush() {
                    if (uris != "" && tolower(enabled) != "no" && types ~ /(^|[ \t])deb([ \t]|$)/) {
                        split(uris, u, /[ \t]+/)
                        pref = (suites ~ ("(^|[ \t])" suite "([ \t]|$)")) ? 0 : 1
                        print pref, u[1]
                    }
                    uris = ""; suites = ""; types = ""; enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                {
                    key = tolower($1); val = $0
                    sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                    if (key == "uris:") uris = val
                    else if (key == "suites:") suites = val
                    else if (key == "types:") types = val
                    else if (key == "enabled:") enabled = val
                }
                END { flush() }
            ' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            # one-line style: deb [options] URI suite components...
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '
                $1 == "deb" && NF >= 3 { print ($3 == suite ? 0 : 1), $2 }'
        done
    } | sort -s -k1,1n | awk 'NR == 1 { print $2 }'
}

MIRROR="${DEBIAN_MIRROR:-}"
MIRROR_FROM='$DEBIAN_MIRROR'
if [ -z "$MIRROR" ]; then
    MIRROR_FROM="the host's apt sources"
    MIRROR="$(mirror_from_apt || true)"
    [ -n "$MIRROR" ] || die "no Debian mirror: set DEBIAN_MIRROR=<http URL of a Debian mirror> or configure apt on this host"
fi
MIRROR="${MIRROR%/}"
case "$MIRROR" in
    http://*|https://*|file://*) ;;
    *) die "mirror '$MIRROR' is not an http(s):// or file:// URL" ;;
esac

# --- package list -------------------------------------------------------------
PKGS="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PACKAGES_FILE" | awk 'NF' | paste -sd, -)"
[ -n "$PKGS" ] || die "empty package list in $PACKAGES_FILE"

ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"

# --- work dir and cleanup -----------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aftershock-rootfs.XXXXXX")"
ROOT="$WORK/root"
PARTIAL="$OUT.partial"

umount_under() {
    # Unmount everything mounted below $1, deepest first.
    local m
    awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

kill_chroot_procs() {
    # Processes started by package scripts inside the chroot (daemons that were
    # not stopped). They were started by this script, so ending them is ours.
    local p r
    for p in /proc/[0-9]*; do
        r="$(readlink "$p/root" 2>/dev/null || true)"
        if [ "$r" = "$ROOT" ]; then
            log "killing leftover chroot process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null || true)"
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$?
    set +e
    [ -d "$ROOT" ] && kill_chroot_procs
    umount_under "$WORK"
    rm -rf --one-file-system "$WORK"
    [ $rc -eq 0 ] || rm -f "$PARTIAL"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- download helpers ---------------------------------------------------------
fetch() { # URL DEST
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
    else
        /usr/lib/apt/apt-helper download-file "$1" "$2" >/dev/null
    fi
}

sha256_of() { sha256sum "$1" | awk '{print $1}'; }

# --- the mirror serves Debian $SUITE -----------------------------------------
# The host's apt sources need not be a Debian mirror (Ubuntu, GitHub's runners): then
# debootstrap would fail with its own words. Ask the mirror for the suite's Release first.
if ! fetch "$MIRROR/dists/$SUITE/Release" "$WORK/Release" 2>/dev/null \
    || ! grep -Eq "^(Suite|Codename): $SUITE\$" "$WORK/Release"; then
    die "the mirror from $MIRROR_FROM does not serve Debian $SUITE (no dists/$SUITE/Release naming it): set DEBIAN_MIRROR=<http URL of a Debian mirror> (on Ubuntu hosts and GitHub's runners the apt sources are an Ubuntu mirror, not a Debian one)"
fi

# --- debootstrap --------------------------------------------------------------
# The mirror's address stays out of logs (they end up in CI output): say where it came from.
log "suite=$SUITE arch=$ARCH mirror from $MIRROR_FROM"
log "packages: $PKGS"
T0=$SECONDS
debootstrap --variant=minbase --arch="$ARCH" --components=main \
    --include="$PKGS" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 40 "$WORK/debootstrap.log" >&2
    [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 40 "$ROOT/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
}
log "debootstrap done in $((SECONDS - T0)) s"
kill_chroot_procs
umount_under "$ROOT"

# --- consul from bullseye -----------------------------------------------------
T0=$SECONDS
DL="$WORK/dl"
mkdir -p "$DL"
BASE_URL="$MIRROR/dists/$CONSUL_SUITE"
fetch "$BASE_URL/InRelease" "$DL/InRelease"
if command -v gpgv >/dev/null 2>&1 && [ -r "$KEYRING" ]; then
    gpgv --quiet --keyring "$KEYRING" --output "$DL/Release" "$DL/InRelease" 2>"$DL/gpgv.log" || {
        cat "$DL/gpgv.log" >&2
        die "signature check of $CONSUL_SUITE InRelease failed"
    }
else
    log "WARNING: gpgv or $KEYRING missing: $CONSUL_SUITE Release signature NOT verified"
    sed -n '/^-----BEGIN PGP SIGNED MESSAGE-----$/,/^-----BEGIN PGP SIGNATURE-----$/p' "$DL/InRelease" >"$DL/Release"
fi

INDEX=""
for ext in xz gz; do
    case $ext in xz) command -v xz >/dev/null 2>&1 || continue ;; gz) command -v gzip >/dev/null 2>&1 || continue ;; esac
    name="main/binary-$ARCH/Packages.$ext"
    want="$(awk -v n="$name" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == n { print $1; exit }' "$DL/Release")"
    [ -n "$want" ] || continue
    fetch "$BASE_URL/$name" "$DL/Packages.$ext"
    [ "$(sha256_of "$DL/Packages.$ext")" = "$want" ] || die "checksum mismatch for $name"
    case $ext in xz) xz -dc "$DL/Packages.xz" ;; gz) gzip -dc "$DL/Packages.gz" ;; esac >"$DL/Packages"
    INDEX="$DL/Packages"
    break
done
[ -n "$INDEX" ] || die "no usable main/binary-$ARCH/Packages index for $CONSUL_SUITE"

read -r CONSUL_FILE CONSUL_SHA CONSUL_VER < <(awk -v pkg="$CONSUL_PKG" '
    /^Package:/  { p = $2 }
    /^Version:/  { v = $2 }
    /^Filename:/ { f = $2 }
    /^SHA256:/   { s = $2 }
    /^$/ { if (p == pkg) { print f, s, v; exit } p = ""; f = ""; s = ""; v = "" }
    END { if (p == pkg) print f, s, v }' "$INDEX") || true
[ -n "${CONSUL_FILE:-}" ] || die "package $CONSUL_PKG not found in $CONSUL_SUITE main/binary-$ARCH"
fetch "$MIRROR/$CONSUL_FILE" "$DL/consul.deb"
[ "$(sha256_of "$DL/consul.deb")" = "$CONSUL_SHA" ] || die "checksum mismatch for $CONSUL_FILE"
# Unpack with the rootfs' own dpkg-deb so the host needs no dpkg.
mkdir -p "$ROOT/tmp/consul-deb"
cp "$DL/consul.deb" "$ROOT/tmp/consul.deb"
chroot "$ROOT" dpkg-deb -x /tmp/consul.deb /tmp/consul-deb
install -m 0755 "$ROOT/tmp/consul-deb/usr/bin/consul" "$ROOT/usr/bin/consul"
rm -rf "$ROOT/tmp/consul-deb" "$ROOT/tmp/consul.deb"
chroot "$ROOT" /usr/bin/consul version >"$DL/consul-version" 2>&1 \
    || { cat "$DL/consul-version" >&2; die "consul from $CONSUL_SUITE does not run in the $SUITE rootfs"; }
log "consul $CONSUL_VER installed ($(head -n1 "$DL/consul-version")) in $((SECONDS - T0)) s"

# --- trim ---------------------------------------------------------------------
T0=$SECONDS
# postgresql-common's postinst creates a default cluster; the image uses its own PGDATA.
rm -rf "$ROOT/etc/postgresql/15/main" "$ROOT/var/lib/postgresql/15/main"
# PostgreSQL's optional LLVM JIT is its only user of libLLVM/libz3 (~155 MB). Without
# llvmjit.so the server silently runs without JIT (the images also set jit=off).
rm -rf "$ROOT"/usr/lib/postgresql/15/lib/llvmjit* "$ROOT"/usr/lib/postgresql/15/lib/bitcode \
       "$ROOT"/usr/lib/*-linux-gnu/libLLVM-* "$ROOT"/usr/lib/*-linux-gnu/libz3.so*
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
       "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
       "$ROOT"/usr/share/locale/* "$ROOT"/usr/share/maven-repo \
       "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT/debootstrap"
find "$ROOT/var/log" -type f -delete
# Docker provides these at run time; do not ship the build host's.
rm -f "$ROOT/etc/resolv.conf" "$ROOT/etc/hostname"
: >"$ROOT/etc/hosts"
[ -e "$ROOT/etc/machine-id" ] && : >"$ROOT/etc/machine-id"
log "trimmed in $((SECONDS - T0)) s; rootfs is $(du -sh --one-file-system "$ROOT" | cut -f1)"

# --- smoke test: every service binary still loads -----------------------------
# (java finds libjli.so through $ORIGIN, which needs /proc/self/exe.)
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /bin/sh -ec '
    java -version
    /usr/lib/postgresql/15/bin/postgres --version
    memcached -V
    docker-registry --version
    consul version
    dockerd --version
    test -r /usr/share/java/zookeeper.jar
' >"$WORK/smoke.log" 2>&1 || { cat "$WORK/smoke.log" >&2; die "smoke test of the rootfs failed"; }
umount "$ROOT/proc"

# --- tar ----------------------------------------------------------------------
T0=$SECONDS
tar -C "$ROOT" --numeric-owner --one-file-system -cf "$PARTIAL" .
mv -f "$PARTIAL" "$OUT"
log "wrote $OUT ($(du -h "$OUT" | cut -f1)) in $((SECONDS - T0)) s; total $((SECONDS - START)) s"
