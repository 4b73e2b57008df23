#!/bin/bash
# The Debian package (packaging/build-deb.sh): it builds; lintian reports no
# error; it holds the binary, both man pages, the completion, the units and
# the configuration (a conffile); its Depends come from the libraries. As
# root it is then installed with dpkg -i: coffer runs from /usr/bin, the
# coffer user owns /var/lib/coffer and can read the 0600 configuration,
# systemd-analyze accepts every unit, man finds both pages; and it is purged
# cleanly (no file, folder or statoverride left).
. "$COFFER_SRC/tests/integration/lib.sh"
t_setup deb
for tool in dpkg-deb lintian scdoc systemd-analyze man; do
	command -v "$tool" >/dev/null || t_skip "$tool is not installed (packaging/install-deps.sh --test)"
done
VERSION=$("$COFFER_BIN" --version | awk '{print $2}')

BUILD_DIR=$T/build "$COFFER_SRC/packaging/build-deb.sh" >"$T/build.log" 2>&1
DEB=$T/build/coffer_${VERSION}_$(dpkg --print-architecture).deb
if [ -f "$DEB" ]; then pass "the package builds: ${DEB##*/}"; else
	fail "the package builds" "no $DEB; build log:"
	tail -n 30 "$T/build.log"
	t_finish
fi

# lintian as an unprivileged user when root (it says not to run as root).
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chmod 755 "$T" "$T/build"
	chmod 644 "$DEB"
	runuser -u nobody -- lintian --fail-on error "$DEB" >"$T/lintian.out" 2>&1
else
	lintian --fail-on error "$DEB" >"$T/lintian.out" 2>&1
fi
lrc=$?
check_eq "lintian: no error (exit 0)" 0 "$lrc"
check_no_grep "lintian: no E: tag" "$T/lintian.out" "^E: "
check_no_grep "lintian: no W: tag" "$T/lintian.out" "^W: "

dpkg-deb -c "$DEB" | awk '{print $1, $2, $6}' >"$T/contents"
for f in ./usr/bin/coffer ./usr/share/man/man1/coffer.1.gz ./usr/share/man/man5/coffer.conf.5.gz \
	./usr/share/bash-completion/completions/coffer ./etc/coffer/coffer.conf \
	./lib/systemd/system/coffer-backup@.service ./lib/systemd/system/coffer-backup@.timer \
	./lib/systemd/system/coffer-prune.service ./lib/systemd/system/coffer-prune.timer \
	./lib/systemd/system/coffer-verify.service ./lib/systemd/system/coffer-verify.timer \
	./usr/share/doc/coffer/copyright; do
	check_grep "the package holds $f" "$T/contents" " $f\$"
done
check_grep "the configuration is 0600 root's in the package" "$T/contents" "^-rw------- root/root ./etc/coffer/coffer.conf$"
dpkg-deb -f "$DEB" Depends >"$T/depends"
for lib in libsodium23 libzstd1 libarchive13 libcurl4 liblmdb0 libpq5 libjansson4 libyaml-0-2; do
	check_grep "Depends: $lib (from dpkg-shlibdeps)" "$T/depends" "(^|, )$lib( |,|$)"
done
check_grep "Depends: adduser and tzdata" "$T/depends" "adduser, tzdata"
check_eq "Recommends: age, zstd" "age, zstd" "$(dpkg-deb -f "$DEB" Recommends)"
check_eq "conffiles: the configuration" "/etc/coffer/coffer.conf" "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)"

if [ "$(id -u)" != 0 ]; then
	t_log "# not root: the install, units and purge checks are left out"
	t_finish
fi
if dpkg-query -W -f='${Status}' coffer 2>/dev/null | grep -q "install ok installed"; then
	t_log "# a coffer package is installed on this machine already: not replaced"
	t_finish
fi
t_at_exit "dpkg --purge coffer >/dev/null 2>&1"
dpkg -i "$DEB" >"$T/dpkg.out" 2>&1
check_eq "dpkg -i installs it" 0 "$?"
check_eq "coffer runs from /usr/bin" "coffer $VERSION" "$(/usr/bin/coffer --version)"
check_eq "the coffer system user exists" "coffer" "$(id -un coffer 2>/dev/null)"
check_eq "it owns /var/lib/coffer, mode 0750" "coffer coffer 750" "$(stat -c '%U %G %a' /var/lib/coffer)"
check_eq "it owns /etc/coffer/coffer.conf, mode 0600" "coffer coffer 600" "$(stat -c '%U %G %a' /etc/coffer/coffer.conf)"
runuser -u coffer -- /usr/bin/coffer check >"$OUT" 2>"$ERR"
check_eq "as coffer, 'coffer check' reads the installed configuration: it has no repository yet (exit 2)" 2 "$?"
check_grep "and says so" "$ERR" "/etc/coffer/coffer.conf: no \[repository\] section"
(cd /lib/systemd/system && systemd-analyze verify coffer-backup@pg.service coffer-backup@pg.timer \
	coffer-prune.service coffer-prune.timer coffer-verify.service coffer-verify.timer) >"$T/verify.out" 2>&1
check_eq "systemd-analyze verify accepts every unit (an instance of the template)" 0 "$?"
check_empty_output "with nothing to say" cat "$T/verify.out"
check_eq "the units run as coffer" "3" "$(grep -l '^User=coffer$' /lib/systemd/system/coffer-*.service | wc -l)"
check_eq "man finds coffer(1)" "/usr/share/man/man1/coffer.1.gz" "$(man -w coffer 2>&1)"
check_eq "man finds coffer.conf(5)" "/usr/share/man/man5/coffer.conf.5.gz" "$(man -w 5 coffer.conf 2>&1)"

dpkg --purge coffer >"$T/purge.out" 2>&1
check_eq "dpkg --purge removes it" 0 "$?"
check_absent "no /usr/bin/coffer" /usr/bin/coffer
check_absent "no /etc/coffer" /etc/coffer
check_absent "no /var/lib/coffer" /var/lib/coffer
check_absent "no unit left" /lib/systemd/system/coffer-prune.service
check_eq "no statoverride left" "" "$(dpkg-statoverride --list /etc/coffer/coffer.conf)"
check_eq "dpkg knows nothing of it" "" "$(dpkg-query -W -f='${Status}' coffer 2>/dev/null)"
t_finish
