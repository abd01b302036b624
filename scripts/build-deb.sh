#!/usr/bin/env bash
# Builds the Debian package of the relay: courier_VERSION_ARCH.deb, for the architecture of this machine.
#   scripts/build-deb.sh [OUTPUT-DIR]          (default: .build/deb)
# The binary is a release build with the Swift runtime linked in (--static-swift-stdlib): it runs without a Swift
# toolchain. The package holds /usr/bin/relay, the systemd unit, the man page (generated from the command's own
# help), bash/zsh/fish completions and a commented /etc/courier/relay.conf (a conffile). Its dependencies are the
# Debian packages of the shared libraries the binary loads (read with ldd). No debhelper: dpkg-deb only.
# Maintainer: from DEBFULLNAME and DEBEMAIL, as Debian's tools do. Progress goes to stderr; the last line on stdout is the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-.build/deb}
fail() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg ldd objdump python3 gzip; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install dpkg-dev binutils python3)"
done

echo "build-deb: swift build -c release --static-swift-stdlib --product relay" >&2
swift build -c release --static-swift-stdlib --product relay >&2
bin="$(swift build -c release --static-swift-stdlib --product relay --show-bin-path)/relay"
[ -x "$bin" ] || fail "no binary at $bin"

# The binary must not load anything from the toolchain: only Debian's libraries.
libs=$(ldd "$bin")
if grep -Eq 'not found|/opt/swift|libswift|libFoundation|libdispatch|libBlocksRuntime' <<<"$libs"; then
    echo "$libs" >&2
    fail "$bin still needs the Swift toolchain's libraries"
fi

version=$("$bin" --version)
arch=$(dpkg --print-architecture)
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || fail "'relay --version' printed '$version', not a Debian version"

# Depends: the package of each shared library (dpkg -S), libc6 at the newest GLIBC_ symbol version used.
declare -A pkgs=()
while read -r path; do
    real=$(readlink -f "$path")
    owner=""
    for candidate in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
        owner=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$owner" ] && break
    done
    [ -n "$owner" ] || fail "no Debian package owns $path (needed by relay)"
    pkgs[$owner]=1
done < <(awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' <<<"$libs" | grep -v 'ld-linux')
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
depends=""
for p in $(printf '%s\n' "${!pkgs[@]}" | sort); do
    entry=$p
    [ "$p" = libc6 ] && entry="libc6 (>= $glibc)"
    depends+="${depends:+, }$entry"
done
echo "build-deb: Depends: $depends" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/courier" \
    "$root/usr/share/man/man1" "$root/usr/share/doc/courier" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"

install -m 0755 "$bin" "$root/usr/bin/relay"
strip --strip-unneeded "$root/usr/bin/relay"
install -m 0644 packaging/relay.service "$root/lib/systemd/system/relay.service"

# The conffile: the commented relay.conf `relay init` writes, under a header for the packaged service.
"$bin" init --data-dir "$work/conf" --name package >/dev/null
{
    echo "# /etc/courier/relay.conf: the configuration of the relay service (systemctl status relay)."
    echo "# /var/lib/courier/relay.conf links here. After an edit: \`sudo systemctl reload relay\` (group, trust,"
    echo "# duty-cycle) or \`sudo systemctl restart relay\` (links, callsign, radio). A line the relay cannot use"
    echo "# stops it with exit 78 naming the line: \`journalctl -u relay\`."
    echo "#"
    cat "$work/conf/relay.conf"
} >"$root/etc/courier/relay.conf"
chmod 0644 "$root/etc/courier/relay.conf"

# The man page, from the command's own help (every subcommand, its options and the exit codes).
"$bin" --experimental-dump-help | python3 scripts/manpage.py --date "$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%d)" \
    >"$work/relay.1"
gzip -9n <"$work/relay.1" >"$root/usr/share/man/man1/relay.1.gz"

"$bin" --generate-completion-script bash >"$root/usr/share/bash-completion/completions/relay"
"$bin" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_relay"
"$bin" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/relay.fish"

gzip -9n <README.md >"$root/usr/share/doc/courier/README.md.gz"
cat >"$root/usr/share/doc/courier/copyright" <<'EOF'
Courier: store-and-forward messaging over radio modems, relay to relay.
Source: the Courier repository (this package is built by scripts/build-deb.sh).

/usr/bin/relay links in, statically:
 - the Swift standard library, Foundation and Dispatch (Apache-2.0 with Runtime Library Exception)
 - swift-argument-parser, swift-log, swift-crypto (Apache-2.0)
 - GRDB.swift (MIT)
It loads Debian's libsqlite3, libzstd, libserialport and libmosquitto at run time (see Depends).
EOF
find "$root/usr" "$root/lib" "$root/etc" -type f -exec chmod go-w {} +

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: courier
Version: $version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-Courier maintainers} <${DEBEMAIL:-root@localhost}>
Section: net
Priority: optional
Installed-Size: $size
Depends: $depends
Recommends: adduser
Description: store-and-forward messaging relay over radio modems
 Courier carries minutes, grievances, aid requests and alerts between
 village assemblies, committees and clinics over LoRa and packet-radio
 modems on serial ports (framed serial, KISS TNCs, RNode) and TCP, relay to
 relay, with no internet and with links that come and go.
 .
 This package holds the relay command (relay init, run, send, inbox,
 status ...), a systemd unit that runs it as the user courier (group
 dialout) on /var/lib/courier, and /etc/courier/relay.conf.
EOF
echo "/etc/courier/relay.conf" >"$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"

mkdir -p "$out"
deb="$out/courier_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
readlink -f "$deb"
