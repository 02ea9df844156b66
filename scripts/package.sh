#!/usr/bin/env bash
# Builds the Debian package imgspool_<version>_<arch>.deb with dpkg-deb from the CMake install
# rules (packaging/CMakeLists.txt) and the maintainer scripts in packaging/deb/.
#   package.sh                    configure and build a Release build in build-package/ first
#   package.sh --build-dir DIR    package the binary of an existing build (e.g. the tests' build/)
#   package.sh --out-dir DIR      where the .deb goes (default: dist/)
# The version is the CMake project version plus the Debian revision of the top entry of
# packaging/changelog (0.1.0 + -1). Prints the path of the .deb on stdout, the rest on stderr.
set -euo pipefail

build_dir="" out_dir=""
while (($#)); do
  case $1 in
    --build-dir) build_dir=$(realpath "$2"); shift 2 ;;
    --out-dir) mkdir -p "$2"; out_dir=$(realpath "$2"); shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
root=$(pwd)
out_dir=${out_dir:-$root/dist}
umask 022
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt"; }

if [[ -z $build_dir ]]; then
  build_dir=$root/build-package
  if [[ ! -f $build_dir/CMakeCache.txt ]]; then
    # Debian's hardening flags, all of them (bindnow too), as debhelper would set them (CMake
    # reads CXXFLAGS and LDFLAGS on the first configure only, and no CPPFLAGS).
    eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
    # shellcheck disable=SC2153 # CPPFLAGS comes from dpkg-buildflags
    export CXXFLAGS="$CPPFLAGS $CXXFLAGS"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr >&2
  fi
else
  [[ -f $build_dir/CMakeCache.txt ]] || { echo "package.sh: $build_dir is not a CMake build" >&2; exit 1; }
  if [[ -n $(cache_value IMGSPOOL_SANITIZE) ]]; then
    echo "package.sh: $build_dir is a sanitizer build; package a normal one" >&2
    exit 1
  fi
  # The install rules decide /etc and /lib/systemd/system from the prefix when configuring:
  # a build made for another prefix is configured again (nothing is recompiled).
  if [[ $(cache_value CMAKE_INSTALL_PREFIX) != /usr ]]; then
    echo "package.sh: setting CMAKE_INSTALL_PREFIX=/usr in $build_dir" >&2
    cmake -S . -B "$build_dir" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  fi
fi
cmake --build "$build_dir" -j"$(nproc)" --target imgspool >&2

project_version=$(cache_value CMAKE_PROJECT_VERSION)
deb_version=$(dpkg-parsechangelog -l packaging/changelog -S Version)
if [[ ${deb_version%-*} != "$project_version" ]]; then
  echo "package.sh: packaging/changelog's top entry is $deb_version, the project is" \
    "$project_version: add an entry ($project_version-1) to packaging/changelog" >&2
  exit 1
fi
binary_version=$("$build_dir/imgspool" --version)
if [[ $binary_version != "imgspool $project_version" ]]; then
  echo "package.sh: $build_dir/imgspool says '$binary_version', the project is $project_version" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
partial=""
trap 'rm -rf "$stage" "$partial"' EXIT
pkg=$stage/imgspool
DESTDIR=$pkg cmake --install "$build_dir" >/dev/null
# What dh_strip and dh_compress would do.
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$pkg/usr/bin/imgspool"
gzip -9n "$pkg"/usr/share/man/man*/* "$pkg/usr/share/doc/imgspool/changelog.Debian"

mkdir "$pkg/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$pkg/DEBIAN/"
# Every file under /etc is a conffile; md5sums lists the others (as dh_md5sums does).
(cd "$pkg" && find etc -type f -printf '/%p\n' | LC_ALL=C sort) >"$pkg/DEBIAN/conffiles"
(cd "$pkg" && find usr lib -type f -printf '%p\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$pkg/DEBIAN/md5sums"

# dpkg-shlibdeps wants to run in a source tree: give it the smallest one.
mkdir "$stage/debian"
printf 'Source: imgspool\n\nPackage: imgspool\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O imgspool/usr/bin/imgspool | sed -n 's/^shlibs:Depends=//p')

# systemd (Debian 12) ships systemd-sysusers and systemd-tmpfiles, which postinst runs.
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: imgspool
Version: $deb_version
Architecture: $arch
Maintainer: $(dpkg-parsechangelog -l packaging/changelog -S Maintainer)
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $shlibs, systemd
Section: graphics
Priority: optional
Description: image spool daemon: dropped photos to web derivatives
 imgspool watches spool folders (SFTP, NFS or local drop-ins), waits until a
 dropped JPEG, PNG or WebP is whole, validates it, renders web derivatives with
 libvips, stores them in a local folder or an S3 bucket, records every job in
 SQLite and moves the original to done/, or to failed/ with the reason.
 .
 This package runs it as the systemd service imgspool.service under the system
 user imgspool. Members of the group imgspool-drop upload into the inbox of the
 default spool, /var/spool/imgspool/default/inbox.
CONTROL

mkdir -p "$out_dir"
deb=$out_dir/imgspool_${deb_version}_${arch}.deb
# Written under a hidden name and renamed: out_dir never shows a half-written .deb.
partial=$out_dir/.${deb##*/}.partial
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$partial" >&2
mv "$partial" "$deb"
echo "$deb"
