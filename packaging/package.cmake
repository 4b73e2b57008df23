# The Debian package (COFFER_PACKAGE=ON; packaging/build-deb.sh sets it, with
# the prefix /usr). Only then are the files outside the prefix installed
# (/etc/coffer, /lib/systemd/system), so 'cmake --install build' on a
# developer's machine never writes /etc.
#   cmake --build BUILD --target package   ->  BUILD/coffer_VERSION_ARCH.deb

find_program(SCDOC scdoc REQUIRED)
find_program(GZIP gzip REQUIRED)
set(pkg ${PROJECT_SOURCE_DIR}/packaging)

# Man pages: scdoc sources, compressed as Debian wants (gzip -9n: no name, no
# time stamp, so the build is reproducible).
set(man_outputs)
foreach(page coffer.1 coffer.conf.5)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND sh -c "${SCDOC} < '${pkg}/man/${page}.scd' | ${GZIP} -9n > '${out}'"
    DEPENDS ${pkg}/man/${page}.scd VERBATIM)
  list(APPEND man_outputs ${out})
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${out} DESTINATION share/man/man${section})
endforeach()
set(changelog ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz)
add_custom_command(OUTPUT ${changelog}
  COMMAND sh -c "${GZIP} -9n < '${pkg}/debian/changelog' > '${changelog}'"
  DEPENDS ${pkg}/debian/changelog VERBATIM)
add_custom_target(coffer_docs ALL DEPENDS ${man_outputs} ${changelog})

install(FILES ${pkg}/completion/coffer.bash DESTINATION share/bash-completion/completions
  RENAME coffer)
install(FILES ${pkg}/debian/copyright ${changelog} DESTINATION share/doc/coffer)
install(FILES ${pkg}/debian/lintian-overrides DESTINATION share/lintian/overrides RENAME coffer)
install(FILES ${pkg}/coffer.conf DESTINATION /etc/coffer
  PERMISSIONS OWNER_READ OWNER_WRITE)
file(GLOB units ${pkg}/systemd/*.service ${pkg}/systemd/*.timer)
install(FILES ${units} DESTINATION /lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME coffer)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGE_CONTACT "coffer maintainers <coffer@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "streaming, encrypted backups of databases and Kubernetes to S3")
set(CPACK_PACKAGE_DESCRIPTION
  "coffer dumps PostgreSQL, MariaDB/MySQL, Redis, SQLite and MongoDB databases,
Kubernetes manifests and folders, and streams each dump through zstd and age
public-key encryption into object storage (S3, with copies in a second
region) or a local folder. A local LMDB catalog records every backup and
drives retention; the bucket stays the source of truth. Backups restore
with coffer or with age, zstd and tar alone.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the libraries' packages (dpkg-shlibdeps), plus adduser for the
# postinst and tzdata for retention's calendar periods.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, tzdata")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "age, zstd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql-client, mariadb-client, redis-tools, sqlite3, pgbackrest")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${pkg}/debian/postinst ${pkg}/debian/prerm ${pkg}/debian/postrm ${pkg}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
