#!/usr/bin/env bash
# Checks the Debian libraries Qt's xcb (X11) platform needs. Never installs anything unasked:
# when some are missing it prints the apt-get command and
#   - installs them if INSTALL_DISPLAY_LIBS=1 (`make run INSTALL_DISPLAY_LIBS=1`),
#   - else asks on a terminal ("Install them now? [y/N]"),
#   - else (no terminal: scripts, CI) only prints the command and fails.
# Nothing to check without a display (the explorer then says how to run it) or headless
# (QT_QPA_PLATFORM=offscreen needs none of them).
set -euo pipefail
[ "${QT_QPA_PLATFORM:-}" = "offscreen" ] && exit 0
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    exit 0
fi
command -v dpkg >/dev/null || exit 0  # not Debian: nothing we know how to check
missing=()
for pkg in libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo "
command="${SUDO}apt-get update && ${SUDO}apt-get install -y ${missing[*]}"
echo "Qt's X11 platform needs these Debian packages, which are not installed: ${missing[*]}" >&2
echo "  $command" >&2
if [ "${INSTALL_DISPLAY_LIBS:-0}" != 1 ]; then
    if [ -t 0 ] && [ -t 1 ]; then
        read -r -p "Install them now? [y/N] " answer
        case "$answer" in
            y|Y|yes|YES) ;;
            *) echo "Not installed. Run the command above, or start with \`make run INSTALL_DISPLAY_LIBS=1\`." >&2
               exit 1 ;;
        esac
    else
        echo "Not installed (no terminal to ask on). Run the command above, or \`make run INSTALL_DISPLAY_LIBS=1\`." >&2
        exit 1
    fi
fi
if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
    echo "Run the command above as root (sudo is not installed)." >&2
    exit 1
fi
${SUDO}apt-get update -qq
${SUDO}apt-get install -y -qq "${missing[@]}"
