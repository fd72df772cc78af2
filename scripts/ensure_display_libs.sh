#!/usr/bin/env bash
# Installs the Debian libraries Qt's xcb platform needs, only when they are missing.
# Headless runs (QT_QPA_PLATFORM=offscreen) need none of them.
set -euo pipefail
[ "${QT_QPA_PLATFORM:-}" = "offscreen" ] && exit 0
missing=()
for pkg in libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "Qt needs these Debian packages: ${missing[*]} (install them with apt-get as root)" >&2
    exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "Installing Qt display libraries: ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
