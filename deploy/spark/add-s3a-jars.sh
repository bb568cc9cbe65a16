#!/bin/sh
# Put hadoop-aws and the AWS SDK v2 bundle that match Spark's own Hadoop into a Spark jars dir.
#
#   add-s3a-jars.sh JARS_DIR [SPARK_SUBMIT]
#
# Used by both images (deploy/spark/Dockerfile: /opt/spark/jars for master and workers;
# deploy/airflow/Dockerfile: pyspark's jars dir for the driver), so they get the same jars.
# The Hadoop version is read from the hadoop-client-api jar Spark ships (Spark 4.3.0 / pyspark 4.3.0:
# 3.5.0); if HADOOP_VERSION is set the build fails when they differ. hadoop-aws of exactly that
# version is resolved with Spark's own --packages (Ivy, from Maven Central), which brings the
# software.amazon.awssdk:bundle version that hadoop-aws release declares, plus any other runtime
# dependency it has; jars Spark already ships are not duplicated.
set -eu
JARS=${1:?usage: add-s3a-jars.sh JARS_DIR [SPARK_SUBMIT]}
SUBMIT=${2:-spark-submit}

api=$(ls "$JARS"/hadoop-client-api-*.jar 2>/dev/null | head -n 1 || true)
[ -n "$api" ] || { echo "no hadoop-client-api-*.jar in $JARS: is this a Spark jars dir?" >&2; exit 1; }
hadoop=$(basename "$api" .jar)
hadoop=${hadoop#hadoop-client-api-}
if [ -n "${HADOOP_VERSION:-}" ] && [ "$hadoop" != "$HADOOP_VERSION" ]; then
  echo "Spark in $JARS bundles Hadoop $hadoop but HADOOP_VERSION=$HADOOP_VERSION: update the Dockerfile ARG" >&2
  exit 1
fi
echo "Spark bundles Hadoop $hadoop: adding org.apache.hadoop:hadoop-aws:$hadoop and its AWS SDK"

work=$(mktemp -d)
: > "$work/noop.py"
"$SUBMIT" --master 'local[1]' --conf "spark.jars.ivy=$work/ivy" \
  --packages "org.apache.hadoop:hadoop-aws:$hadoop" "$work/noop.py"

added=0
for jar in "$work"/ivy/jars/*.jar; do
  name=$(basename "$jar" .jar)   # <group>_<artifact>-<version>
  name=${name#*_}                # <artifact>-<version>
  artifact=${name%-*}
  if ls "$JARS/$artifact"-[0-9]*.jar >/dev/null 2>&1; then
    echo "  keep Spark's own $(basename "$(ls "$JARS/$artifact"-[0-9]*.jar | head -n 1)") (not adding $name)"
    continue
  fi
  cp "$jar" "$JARS/$name.jar"
  echo "  added $name.jar"
  added=$((added + 1))
done
rm -rf "$work"
ls "$JARS"/hadoop-aws-"$hadoop".jar >/dev/null
ls "$JARS"/bundle-2.*.jar >/dev/null || { echo "AWS SDK v2 bundle missing" >&2; exit 1; }
echo "$added jar(s) added to $JARS"
