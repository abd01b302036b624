#!/usr/bin/env bash
# Checks a package built by scripts/build-deb.sh as an operator's machine would meet it:
#   scripts/check-deb.sh .build/deb/courier_VERSION_ARCH.deb
# its file list, control fields and conffile; then it unpacks it into a scratch root (dpkg -x) and runs the
# installed /usr/bin/relay (--version, init beside a linked relay.conf, demo) in a mount namespace where /opt/swift
# is an empty tmpfs and the environment is empty: what ldd shows and what runs is all it has. Needs root (unshare).
set -euo pipefail
deb=$(readlink -f "$1")
fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }
say() { echo "check-deb: $*"; }

list=$(dpkg-deb -c "$deb")
for f in ./usr/bin/relay ./lib/systemd/system/relay.service ./etc/courier/relay.conf ./usr/share/man/man1/relay.1.gz \
         ./usr/share/bash-completion/completions/relay ./usr/share/zsh/vendor-completions/_relay \
         ./usr/share/fish/vendor_completions.d/relay.fish ./usr/share/doc/courier/copyright; do
    grep -q " $f\$" <<<"$list" || fail "$f is not in the package"
done
grep -q ' ./usr/bin/relay$' <<<"$(grep -- '-rwxr-xr-x root/root' <<<"$list")" || fail "/usr/bin/relay is not root-owned 0755"
say "dpkg-deb -c: $(wc -l <<<"$list") entries, /usr/bin/relay, the unit, relay.conf, man page, 3 completions"

depends=$(dpkg-deb -f "$deb" Depends)
for p in libserialport0 libzstd1 libmosquitto1 libsqlite3-0 libc6; do
    grep -Eq "(^|, )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p: $depends"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/courier/relay.conf ] || fail "relay.conf is not a conffile"
say "Depends: $depends"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root"
grep -q '^ExecStart=/usr/bin/relay run ' "$root/lib/systemd/system/relay.service" || fail "the unit does not run /usr/bin/relay"
bash -n "$root/usr/share/bash-completion/completions/relay" || fail "bash completion does not parse"
# The unit as systemd reads it (the binary and man page from the scratch root), and its exposure score.
if command -v systemd-analyze >/dev/null; then
    sed "s#/usr/bin/relay#$root/usr/bin/relay#" "$root/lib/systemd/system/relay.service" >"$root/relay.service"
    MANPATH=$root/usr/share/man systemd-analyze verify "$root/relay.service" || fail "systemd-analyze verify"
    exposure=$(systemd-analyze security --offline=true "$root/relay.service" 2>/dev/null | grep -o 'Overall exposure level for relay.service: [0-9.]*' | grep -o '[0-9.]*$')
    systemd-analyze security --offline=true --threshold=30 "$root/relay.service" >/dev/null 2>&1 \
        || fail "the unit's exposure ($exposure) is above 3.0: a hardening option went missing"
    say "systemd-analyze verify: OK; security exposure $exposure (0 = confined, 10 = exposed)"
else
    say "systemd-analyze is not installed: the unit is not verified"
fi
zcat "$root/usr/share/man/man1/relay.1.gz" >"$root/relay.1"
man_warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$root/relay.1" 2>&1 >/dev/null || true)
[ -z "$man_warnings" ] || fail "man page warnings: $man_warnings"
grep -q 'relay run' "$root/relay.1" || fail "the man page lacks relay run"

# What the binary asks the loader for: Debian's libraries only, no search path into a toolchain.
needed=$(readelf -d "$root/usr/bin/relay" | grep -E 'NEEDED|RPATH|RUNPATH')
if grep -Eq 'swift|Foundation|dispatch|BlocksRuntime|/opt' <<<"$needed"; then
    echo "$needed"
    fail "/usr/bin/relay asks for the Swift toolchain's libraries"
fi

# The installed binary with no toolchain: an empty tmpfs over /opt/swift, an empty environment. Where mount
# namespaces are not allowed (a container without CAP_SYS_ADMIN), the toolchain stays visible and only the
# readelf check above and an empty environment prove it; the script says so.
# The toolchain's directory: /opt/swift here (swift is /opt/swift/usr/bin/swift).
toolchain=/opt/swift
if command -v swift >/dev/null; then toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")"); fi
hide=yes
[ -d "$toolchain" ] && unshare -m --propagation private mount -t tmpfs none "$toolchain" 2>/dev/null || hide=no
cat >"$root/smoke.sh" <<'EOF'
set -eu
root=$1 toolchain=$3
if [ "$2" = yes ]; then
    mount -t tmpfs none "$toolchain"
    [ -z "$(ls -A "$toolchain")" ] || { echo "$toolchain is not hidden"; exit 1; }
    echo "check-deb: $toolchain hidden under an empty tmpfs"
else
    echo "check-deb: cannot hide $toolchain here (no mount namespace, or no toolchain); readelf shows no path to it"
fi
! command -v swift >/dev/null 2>&1 || { echo "swift still on PATH"; exit 1; }
echo "ldd $root/usr/bin/relay:"
ldd "$root/usr/bin/relay" | tee "$root/ldd.txt"
if grep -Eq "not found|$toolchain|libswift" "$root/ldd.txt"; then echo "relay needs the toolchain"; exit 1; fi
echo "relay --version: $("$root/usr/bin/relay" --version)"
# As the package sets it up: relay.conf in the data directory links to the conffile; `relay init` keeps the link.
mkdir "$root/data"
ln -s "$root/etc/courier/relay.conf" "$root/data/relay.conf"
"$root/usr/bin/relay" init --data-dir "$root/data" --name "smoke" >/dev/null
[ -L "$root/data/relay.conf" ] || { echo "relay init replaced the relay.conf link"; exit 1; }
"$root/usr/bin/relay" demo --dir "$root/demo" >"$root/demo.txt" 2>&1 || { cat "$root/demo.txt"; echo "relay demo failed"; exit 1; }
tail -3 "$root/demo.txt"
EOF
if [ $hide = yes ]; then
    unshare -m --propagation private env -i PATH=/usr/bin:/bin HOME="$root" bash "$root/smoke.sh" "$root" yes "$toolchain"
else
    env -i PATH=/usr/bin:/bin HOME="$root" bash "$root/smoke.sh" "$root" no "$toolchain"
fi || fail "the installed relay does not run without /opt/swift"
say "OK: $deb"
