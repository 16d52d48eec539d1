#!/usr/bin/env bash
# Give an unmodified program the fast path, then look at what it did.
#
#   examples/env_optin.sh URL
#
# The Python one-liner below knows nothing about http_fastpath: HTTP_FASTPATH makes every
# connection it opens through requests go through the fastpath dialer, and
# HTTP_FASTPATH_LOG=info prints one line per fallback reason (if any) on stderr.
set -euo pipefail
url="${1:?usage: examples/env_optin.sh URL}"
python="${PYTHON:-python3}"

HTTP_FASTPATH=tfo,mptcp HTTP_FASTPATH_LOG=info "$python" - "$url" <<'PY'
import sys

import requests

for n in range(3):
    r = requests.get(sys.argv[1], timeout=10)   # requests.get: a fresh connection each time
    print(f"#{n} {r.status_code}")

import http_fastpath  # only to show the proof; the program above needs no change

print("opt-in:", http_fastpath.status()["active"], http_fastpath.status()["patched"])
print("last connection:", http_fastpath.connection_info(r))
PY
