#!/bin/sh
# Install the Debian 12 packages rlfeed needs, if any are missing. chromium is
# for test_dashboard (headless); libjs-chart.js is the chart library /dashboard
# serves; openssl makes test_tls's certificates.
# As root: installs them with apt-get (without starting the distribution's
# redis-server service). Otherwise: prints the exact command and fails.
set -eu

PKGS="gcc make meson ninja-build pkg-config cmake python3 libnng-dev libmbedtls-dev libhiredis-dev
libmsgpack-dev libgsl-dev libinih-dev libjansson-dev redis-server
clang-format prometheus chromium libjs-chart.js openssl"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "rlfeed needs these Debian packages:$missing" >&2
    echo "run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi

echo "installing:$missing"
# Keep the package's own redis-server service from starting: rlfeed runs its own.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
status=0
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } || status=$?
[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit $status
