#!/usr/bin/env bash
# The real datasets of bench/bench_quality.py that Debian packages ship, unpacked into bench/.datasets/
# (not in git). apt-get only downloads the packages (as `apt-get download`, no install): the data files
# are all that is used, so R itself is not needed. The versions are pinned; the PyPI ones are in the
# `bench` extra of pyproject.toml.
#   r-cran-kernlab 0.9-32-1:   kernlab/data/ticdata.rda (CoIL 2000)
#   r-cran-modeldata 1.1.0-1:  modeldata/data/Rdata.rdb (mlc_churn)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="$here/.datasets"
packages=("r-cran-kernlab=0.9-32-1" "r-cran-modeldata=1.1.0-1")
mkdir -p "$target"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! apt-cache policy r-cran-kernlab | grep -q "Candidate: [0-9]"; then
  apt-get update -qq
fi
# apt-get warns that it downloads unsandboxed (its _apt user cannot write to a mktemp folder): harmless
if ! (cd "$work" && apt-get download -qq "${packages[@]}" 2> "$work/apt.log"); then
  cat "$work/apt.log" >&2
  exit 1
fi
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$target"
  echo "unpacked $(basename "$deb")"
done
ls "$target/usr/lib/R/site-library/kernlab/data/ticdata.rda" "$target/usr/lib/R/site-library/modeldata/data/Rdata.rdb"
