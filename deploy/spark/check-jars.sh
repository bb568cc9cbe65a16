#!/bin/sh
# Check the jars resolved from deploy/spark/pom.xml against the Spark they are added to.
#
#   check-jars.sh SPARK_JARS_DIR MANIFEST_JARS_DIR
#
# SPARK_JARS_DIR is Spark's own jars folder (/opt/spark/jars in the Spark image, pyspark's jars/ in the
# Airflow image); MANIFEST_JARS_DIR holds what `mvn dependency:copy-dependencies` copied from the pom.
# Run by both image builds (deploy/spark/Dockerfile, deploy/airflow/Dockerfile). Fails when
#   * hadoop-aws is not of the Hadoop version Spark bundles (hadoop-client-api-<version>.jar): s3a
#     needs them equal, so the pom's hadoop.version must follow Spark's;
#   * the Iceberg runtime is not built for this Spark's minor version and Scala version
#     (iceberg-spark-runtime-<minor>_<scala> against spark-core_<scala>-<version>.jar);
#   * a manifest jar is an artifact Spark already ships, in any version: two copies on one class
#     path; exclude it in the pom instead.
set -eu
spark=${1:?usage: check-jars.sh SPARK_JARS_DIR MANIFEST_JARS_DIR}
manifest=${2:?usage: check-jars.sh SPARK_JARS_DIR MANIFEST_JARS_DIR}

# <artifact>-<version>[-<classifier>].jar -> <artifact> (the name up to the first "-<digit>")
artifact() { basename "$1" .jar | sed -E 's/-[0-9].*$//'; }
one() { # the single file matching a pattern, or nothing
  for f in "$@"; do [ -e "$f" ] && echo "$f"; done | head -n 1
}
failed=0
fail() { echo "check-jars: $*" >&2; failed=1; }

ls "$manifest"/*.jar >/dev/null 2>&1 || { echo "check-jars: no jars in $manifest" >&2; exit 1; }

api=$(one "$spark"/hadoop-client-api-*.jar)
core=$(one "$spark"/spark-core_*.jar)
[ -n "$api" ] && [ -n "$core" ] || { echo "check-jars: $spark is not a Spark jars folder" >&2; exit 1; }
hadoop=$(basename "$api" .jar); hadoop=${hadoop#hadoop-client-api-}
core=$(basename "$core" .jar); core=${core#spark-core_}   # <scala>-<spark version>
scala=${core%%-*}
version=${core#*-}
minor=$(echo "$version" | cut -d. -f1,2)
echo "check-jars: Spark $version (Scala $scala, Hadoop $hadoop) in $spark"

aws=$(one "$manifest"/hadoop-aws-*.jar)
if [ -z "$aws" ]; then
  fail "no hadoop-aws jar in $manifest"
elif [ "$(basename "$aws")" != "hadoop-aws-$hadoop.jar" ]; then
  fail "$(basename "$aws") in the manifest, but Spark bundles Hadoop $hadoop: set hadoop.version in deploy/spark/pom.xml to $hadoop"
fi

iceberg=$(one "$manifest"/iceberg-spark-runtime-*.jar)
if [ -z "$iceberg" ]; then
  fail "no iceberg-spark-runtime jar in $manifest"
else
  case "$(basename "$iceberg")" in
    "iceberg-spark-runtime-${minor}_${scala}-"*) ;;
    *) fail "$(basename "$iceberg") is not the Iceberg runtime for Spark $minor / Scala $scala (iceberg-spark-runtime-${minor}_${scala})" ;;
  esac
fi

for jar in "$manifest"/*.jar; do
  name=$(artifact "$jar")
  own=$(one "$spark/$name"-[0-9]*.jar)
  [ -z "$own" ] || fail "$(basename "$jar") duplicates Spark's own $(basename "$own"): exclude it in deploy/spark/pom.xml"
done

[ "$failed" -eq 0 ] || exit 1
echo "check-jars: $(ls "$manifest"/*.jar | wc -l) jar(s) of the manifest fit this Spark"
