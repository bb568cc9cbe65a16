#!/bin/bash
# Build the token check of `citylake sql-server --protocol hive2` (HiveServer2's CUSTOM authentication,
# deploy/spark/auth/src/main/java/org/citylake/auth/TokenAuthenticator.java) into DIR/citylake-sql-auth.jar,
# beside the manifest's jars, where citylake.core.spark puts every jar on Spark's class path.
# Compiled with the JDK (javac, Java 17) against Spark's own jars: the interface it implements,
# org.apache.hive.service.auth.PasswdAuthenticationProvider, ships in Spark's spark-hive-thriftserver jar
# (pyspark's jars/; that artifact is not taken from Maven Central).
#
#   scripts/build-auth-jar.sh DIR [SPARK_JARS_DIR]     (default: the jars/ of the virtualenv's pyspark)
#
# Called by scripts/fetch-jars.sh (`make venv`) and by deploy/airflow/Dockerfile.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: build-auth-jar.sh DIR [SPARK_JARS_DIR]}
spark_jars=${2:-}
if [ -z "$spark_jars" ]; then
  python=$here/.venv/bin/python
  [ -x "$python" ] || python=python3
  spark_jars=$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
fi
if ! ls "$spark_jars"/spark-hive-thriftserver_*.jar >/dev/null 2>&1; then
  echo "build-auth-jar: no spark-hive-thriftserver jar in $spark_jars (Spark's jars folder)" >&2
  exit 1
fi
for tool in javac jar; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-auth-jar: $tool is needed: a JDK 17 (Debian's openjdk-17-jdk-headless)" >&2
    exit 1
  fi
done
src=$here/deploy/spark/auth/src/main/java
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
javac --release 17 -encoding UTF-8 -d "$tmp/classes" -cp "$spark_jars/*" \
  "$src/org/citylake/auth/TokenAuthenticator.java"
mkdir -p "$out"
jar --create --file "$tmp/citylake-sql-auth.jar" -C "$tmp/classes" .
mv "$tmp/citylake-sql-auth.jar" "$out/citylake-sql-auth.jar"
echo "build-auth-jar: $out/citylake-sql-auth.jar"
