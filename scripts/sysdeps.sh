#!/usr/bin/env bash
# Install the Debian packages that `make run` or `make test` needs (scripts/system-packages.txt)
# when running as root; otherwise name the missing ones, how to install them, and stop.
#
#   scripts/sysdeps.sh run    # the packages marked `run`
#   scripts/sysdeps.sh test   # every package of the list (the default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
purpose="${1:-test}"
case "$purpose" in
  run) who="make run" ;;
  test) who="the test suite" ;;
  *) echo "usage: $0 [run|test]" >&2; exit 2 ;;
esac
# Lines are "package [run]"; comments and blank lines are skipped.
mapfile -t wanted < <(
  sed -e 's/#.*//' "$here/system-packages.txt" |
    awk -v purpose="$purpose" 'NF && (purpose == "test" || $2 == "run") { print $1 }'
)
[ ${#wanted[@]} -eq 0 ] && exit 0
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "[hocba] installing system packages for $who: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ! command -v dpkg-query >/dev/null; then
  echo "[hocba] $who needs these Debian packages (or your system's equivalents): ${wanted[*]}" >&2
  echo "        this is not a Debian-like system: install them by hand, then run it again." >&2
  exit 1
else
  echo "[hocba] $who needs these system packages, which are missing: ${missing[*]}" >&2
  echo "        install them with: sudo apt-get install ${missing[*]}" >&2
  echo "        (or run the same make command as root, which installs them)" >&2
  exit 1
fi
