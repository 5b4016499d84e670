#!/usr/bin/env bash
# Run `ansible-test sanity` the way it must run: from an
# ansible_collections/casper/directus_promote tree. The repository root is the
# collection root, so copy the files git knows (tracked and untracked-but-not-
# ignored) into a temporary tree, leaving out ./collections (the import-path
# link back to this very tree).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dp-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/casper/directus_promote"
mkdir -p "$dest"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | grep -zv '^collections/' \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
# ansible-test bootstraps pip in its sanity venvs with a get-pip.py it downloads
# from outside the package registries; give it the offline stand-in instead.
pip_version=$($python -c 'import re, ansible_test, pathlib; print(re.search(r"pip=.(\d+(?:\.\d+)+)", (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()).group(1))')
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
[ -f "$cache" ] || { mkdir -p "$(dirname "$cache")" && cp "$repo/tests/tools/get_pip_offline.py" "$cache"; }
cd "$dest"
# ansible-test wants a git tree or it warns for every file; a throwaway one is enough.
git init -q && git add -A && git -c user.email=ci@example.invalid -c user.name=ci commit -qm sanity
# Not exec: the EXIT trap must still remove the temporary tree.
ansible-test sanity --python "$(${python} -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
