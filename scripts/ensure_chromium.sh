#!/bin/sh
# The browser test drives Debian's Chromium (never a downloaded browser). Install it when missing
# and we can (root + apt); otherwise say loudly that the browser test will be skipped.
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser test (apt-get install chromium)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || (apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1) \
        || echo "WARNING: could not install chromium; the real-browser test will be SKIPPED"
else
    echo "WARNING: /usr/bin/chromium is missing and this user cannot apt-get install it; the real-browser test will be SKIPPED"
fi
exit 0
