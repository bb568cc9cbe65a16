#!/usr/bin/env bash
#   scripts/system-deps.sh          what the tests need (and what the build needs)
#   scripts/system-deps.sh build    what `make venv` needs: Maven, to fetch Spark's jars
#
# Build: Maven (scripts/fetch-jars.sh resolves deploy/spark/pom.xml) and a JDK 17 (javac, for
# scripts/build-auth-jar.sh; the JRE is on the machine).
# System packages the tests use: Chromium (directory page tests) with a Chinese font (without one
# the pages render Chinese as boxes and the screenshot test fails), docker-compose (config check of
# docker-compose.yml) and PostgreSQL's binaries (tests start their own server on a free loopback
# port; no system service is started). Installed from Debian when missing and we are root.
# Otherwise the tests that need them skip and say why — or, with CI=true, fail.
set -u
need=()
command -v mvn >/dev/null 2>&1 || need+=(maven)
# javac: scripts/build-auth-jar.sh compiles the hive2 endpoint's token check
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
if [ "${1:-}" != "build" ]; then
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# WenQuanYi Micro Hei: 1.6 MB against 57 MB for fonts-noto-cjk; in the site's font stack.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || fc-list :lang=zh 2>/dev/null | grep -q . \
  || need+=(fonts-wqy-microhei)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} (not root or no apt-get); tests needing them will skip (fail with CI=true)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
# policy-rc.d 101: install the packages without starting their services (tests start their own).
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "system-deps: could not install ${need[*]}; tests needing them will skip (fail with CI=true)" >&2
[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
