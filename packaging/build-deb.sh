#!/bin/sh
# Builds the Debian package into ./build-deb (or $BUILD_DIR):
#   packaging/build-deb.sh   ->  build-deb/coffer_VERSION_ARCH.deb
# A Release build with Debian's hardening flags (dpkg-buildflags), without the
# tests, with the man pages (scdoc), units and configuration of
# packaging/package.cmake. Needs packaging/install-deps.sh --package.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-deb}
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DCOFFER_TESTS=OFF -DCOFFER_PACKAGE=ON \
  -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
(cd "$BUILD_DIR" && cpack -G DEB >/dev/null)
ls "$BUILD_DIR"/coffer_*.deb
