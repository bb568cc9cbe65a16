#!/bin/bash
# Copy the JVM jars pinned in deploy/spark/pom.xml into DIR (default: the virtualenv's
# share/citylake/jars, where citylake.core.settings looks for them). Maven resolves them from
# Maven Central into its local repository (~/.m2), so a second run downloads nothing.
# Beside them, citylake-sql-auth.jar: the token check of `citylake sql-server --protocol hive2`,
# compiled from deploy/spark/auth against pyspark's jars (scripts/build-auth-jar.sh).
#
#   scripts/fetch-jars.sh [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/.venv/share/citylake/jars}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
if ! command -v mvn >/dev/null; then
  echo "fetch-jars: Maven (mvn) is needed to fetch Spark's jars; install Debian's 'maven' package" \
       "(scripts/system-deps.sh does it when run as root)" >&2
  exit 1
fi
tmp="$out.tmp.$$"
rm -rf "$tmp"
mvn -q -B -f "$here/deploy/spark/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp"
bash "$here/scripts/build-auth-jar.sh" "$tmp" >/dev/null
# Swap in whole: a half-copied folder is never what Spark sees.
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
cp "$here/deploy/spark/pom.xml" "$out/pom.xml"
echo "fetch-jars: $(ls "$out"/*.jar | wc -l) jars in $out"
