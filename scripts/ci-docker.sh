#!/usr/bin/env bash
# Prepares what the container tests (test/deploy) need, for .ci/run: a Docker engine (Debian's
# docker.io, installed when missing; dockerd started when no engine answers) and Runnel's image
# from the current sources (scripts/build-image.mjs, which reuses images whose inputs did not
# change). A step that cannot be done is reported here, and the tests then fail under
# RUNNEL_REQUIRE_SYSTEM_TOOLS=1 naming what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "ci-docker: installing Debian's docker.io (the container tests need an engine)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
  else
    echo "ci-docker: no Docker engine, and only root with apt-get can install one: sudo apt-get install -y docker.io" >&2
  fi
fi

if ! engine_answers && command -v dockerd >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
  # A dockerd that died (or a machine stopped under it) leaves its pid file, which stops a new one.
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
  echo "ci-docker: starting dockerd (log: /var/log/runnel-ci-dockerd.log)"
  nohup dockerd >/var/log/runnel-ci-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_answers && break; sleep 1; done
fi

if ! engine_answers; then
  echo "ci-docker: no Docker engine answers; the container tests will fail" >&2
  exit 0
fi

node scripts/build-image.mjs || echo "ci-docker: the image build failed (above); the container tests will fail" >&2
