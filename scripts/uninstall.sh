#!/usr/bin/env bash
# uninstall.sh MANIFEST - removes what `cmake --install` (make install) put
# in place, as listed in MANIFEST (build/install_manifest.txt), under
# $DESTDIR when it is set; then the directories of those files that are left
# empty. Files not in the manifest are never touched.
set -euo pipefail
manifest=${1:?usage: uninstall.sh install_manifest.txt}
[ -f "$manifest" ] || { echo "uninstall: $manifest not found: nothing was installed from this build" >&2; exit 1; }
dest=${DESTDIR:-}
dirs=()
while IFS= read -r f || [ -n "$f" ]; do
  [ -n "$f" ] || continue
  rm -f -- "$dest$f"
  dirs+=("$(dirname -- "$dest$f")")
done < "$manifest"
# deepest first; rmdir stops at a directory that still holds something
printf '%s\n' "${dirs[@]}" | sort -ru | while IFS= read -r d; do
  while [ "$d" != "$dest" ] && [ "$d" != / ] && rmdir -- "$d" 2>/dev/null; do d=$(dirname -- "$d"); done
done
echo "uninstall: removed $(grep -c . "$manifest") files"
