#!/usr/bin/env bash
# Chromium and chromedriver for the observer web view's headless browser test
# (components/observer-web/tests/browser.rs). The test starts both itself, on loopback,
# and kills them when it ends; this script only installs them.
#
# Usage:
#   chromium.sh ensure    make sure /usr/bin/chromium and /usr/bin/chromedriver exist:
#                         installs Debian's `chromium` and `chromium-driver` with apt-get
#                         when missing (as root, or through sudo); idempotent
set -euo pipefail

die() {
	echo "chromium.sh: error: $*" >&2
	exit 1
}

log() {
	echo "chromium.sh: $*" >&2
}

usage() {
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

installed() {
	[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]
}

ensure() {
	if installed; then
		return 0
	fi
	local as_root=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 ||
			die "chromium is not installed and this is not root; install it with" \
				"'apt-get install -y chromium chromium-driver' as root, then rerun"
		as_root=(sudo -n)
	fi
	log "installing chromium and chromium-driver (/usr/bin/chromium or /usr/bin/chromedriver missing)"
	# Another apt may hold the lock for a while: wait for it rather than fail.
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 update >&2 || true
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
		chromium chromium-driver >&2
	installed || die "chromium-driver installed but /usr/bin/chromium or /usr/bin/chromedriver is missing"
	log "$(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
}

main() {
	[[ $# -eq 1 ]] || usage
	case $1 in
	ensure) ensure ;;
	*) usage ;;
	esac
}

main "$@"
