#!/usr/bin/env bash
# Install what Community One Map needs and is missing; quick when nothing is missing.
#   system: PostgreSQL + PostGIS + pgRouting, GDAL, GEOS, PROJ, Mosquitto (Debian/Ubuntu packages)
#   python: a .venv with the project and its test tools, at the versions pinned in requirements.lock
#   vendor: the big screen's pinned browser assets and CJK font under .var/vendor (onemap vendor)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else
        say "need root to run: $*"; say "run it yourself, or re-run as root"; exit 1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do installed "$pkg" || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing system packages: ${missing[*]}"
    if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -q; _APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

system_packages() {
    if ! command -v apt-get >/dev/null; then
        say "not a Debian/Ubuntu system: install PostgreSQL with PostGIS (and pgRouting), GDAL, GEOS and PROJ yourself,"
        say "or set ONEMAP_DATABASE_URL to a PostGIS database"
        return 0
    fi
    apt_install python3-qgis postgresql postgresql-contrib gdal-bin libgdal-dev libgeos-dev libproj-dev proj-bin python3-venv python3-dev wrk \
        chromium fonts-noto-cjk  # headless browser tests of /screen/; the font the screen's CJK subset is cut from
    # the sensors' broker, run by onemap under .var/mqtt (host/mqtt_broker.py); the clients are the bench's baseline
    apt_install mosquitto mosquitto-clients
    # GStreamer's RTSP server on the system Python (host/rtsp_server.py): the live-camera tests, bench and demo streams
    apt_install gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
        gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi python3-gst-1.0
    local major
    major=$(ls /usr/lib/postgresql | sort -n | tail -1)
    apt_install "postgresql-${major}-postgis-3" "postgresql-${major}-pgrouting"
}

python_env() {
    local python=${PYTHON:-python3}
    if [ ! -f requirements.lock ]; then
        say "requirements.lock is missing: it is part of the repository (make lock writes it from pyproject.toml)"
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv with $($python --version)"
        $python -m venv .venv
    fi
    # the exact versions and hashes come from requirements.lock; the project itself goes in without
    # dependencies of its own, so nothing is resolved afresh here (make lock is where versions change)
    local want have
    want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
    have=$(cat .venv/.onemap-installed 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        mkdir -p .var
        say "installing requirements.lock and the project into .venv (pip; log in .var/pip-install.log)"
        rm -f .venv/.onemap-installed  # a failed install may leave .venv half changed: the next run retries
        if ! { .venv/bin/python -m pip install --upgrade pip \
                && .venv/bin/python -m pip install --require-hashes -r requirements.lock \
                && .venv/bin/python -m pip install --no-deps -e .; } > .var/pip-install.log 2>&1; then
            tail -n 30 .var/pip-install.log
            say "pip failed; the whole log is in .var/pip-install.log"
            say "a hash mismatch or 'no matching distribution' means requirements.lock and this machine's package"
            say "sources disagree (README, 'Dependencies are locked'); a new dependency goes into pyproject.toml, then make lock"
            exit 1
        fi
        echo "$want" > .venv/.onemap-installed
    fi
}

vendor_assets() {
    # quick when present (checks hashes in .var/vendor/manifest.json); fetches from the npm registry otherwise
    if ! .venv/bin/onemap vendor > .var/vendor.log 2>&1; then
        cat .var/vendor.log
        exit 1
    fi
}

if [ -z "${ONEMAP_SKIP_SYSTEM_PACKAGES:-}" ]; then system_packages; fi
python_env
vendor_assets
say "ready"
