#!/usr/bin/env bash
# Removes network namespaces left behind by a killed test run. Every EchoLink
# test namespace is named "elt-*", so nothing else is touched.
set -u
command -v ip >/dev/null 2>&1 || exit 0
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^elt-' || true); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns" 2>/dev/null && echo "sweep-netns: removed stale $ns"
done
exit 0
