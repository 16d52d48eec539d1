#!/bin/bash
# Runs in the guest of scripts/kernel-quic-vm, chrooted into the host root (read-only):
# 1 the module, 2 probe(), 3 uapi_mismatch(), 4 doctor (HTTP/3), 5 the kernel_quic tests,
# 6 kernel messages. The project is imported from the read-only checkout $KQ_PROJ.
# Each step appends "name<TAB>ok|FAIL<TAB>detail" to $KQ_OUT/steps.tsv.
set -u
O=$KQ_OUT
export PYTHONPATH=$KQ_PROJ
cd "$KQ_PROJ" || exit 1
step() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$O/steps.tsv"; echo "kq-guest: $1 $2" > /dev/console; }
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

{
  echo "uname -r: $(uname -r)"
  echo "python: $("$KQ_PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
  echo "aioquic: $("$KQ_PY" -c 'import aioquic; print(aioquic.__version__)')"
  echo "http_fastpath imported from: $("$KQ_PY" -c 'import http_fastpath; print(http_fastpath.__file__)')"
  echo "tainted: $(cat /proc/sys/kernel/tainted)"
  echo "quic srcversion (loaded): $(cat /sys/module/quic/srcversion 2>/dev/null || echo none)"
  echo "quic taint (loaded): $(cat /sys/module/quic/taint 2>/dev/null || echo -)"
} > "$O/env.txt" 2>&1

line=$(grep '^quic ' /proc/modules)
if [ -n "$line" ]; then step module ok "$line"; else step module FAIL "quic is not in /proc/modules"; fi

out=$("$KQ_PY" -c 'from http_fastpath import probe; f = probe().kernel_quic; print(f); raise SystemExit(not f.available)' 2>&1)
if [ $? = 0 ]; then step probe ok "$out"; else step probe FAIL "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi

out=$("$KQ_PY" -c 'from http_fastpath.http3._quic_kernel import uapi_mismatch as u; m = u(); print(repr(m)); raise SystemExit(m is not None)' 2>&1)
if [ $? = 0 ]; then step uapi_mismatch ok "$out"; else step uapi_mismatch FAIL "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi

"$KQ_PY" -m http_fastpath doctor > "$O/doctor.txt" 2>&1
rc=$?
awk '/^HTTP\/3/ {f = 1} f && /^$/ {exit} f' "$O/doctor.txt" > "$O/doctor-http3.txt"
if grep -Eq '^ +ok +kernel QUIC  ' "$O/doctor-http3.txt" && grep -Eq '^ +ok +kernel QUIC uapi ' "$O/doctor-http3.txt"; then
  step doctor ok "rc=$rc; kernel QUIC ok, kernel QUIC uapi ok"
else
  step doctor FAIL "rc=$rc; HTTP/3 section lacks 'ok kernel QUIC' and 'ok kernel QUIC uapi'"
fi

# The checkout is read-only: no pytest cache, no hypothesis database (its warning about an
# unusable .hypothesis/ would be an error under filterwarnings = error), temp dirs under /tmp.
cmd=("$KQ_PY" -m pytest -m kernel_quic tests/loopback/test_http3_kernel_real.py -rs -v
     -p no:cacheprovider -p no:hypothesispytest --basetemp=/tmp/pytest)
echo "${cmd[*]}" > "$O/pytest-cmd.txt"
t0=$(date +%s.%N)
"${cmd[@]}" > "$O/pytest.txt" 2>&1
rc=$?
summary=$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$O/pytest.txt" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')
detail="rc=$rc; ${summary:-no summary line}; $(secs "$t0") s for the pytest process"
if [ $rc = 0 ] && ! echo "$summary" | grep -Eq 'skipped|failed|error'; then step pytest ok "$detail"; else step pytest FAIL "$detail"; fi

bad=$(dmesg | grep -E 'Oops|BUG:|WARNING:|Call Trace|general protection' | head -3 | tr '\n' ' ')
if [ -z "$bad" ]; then step dmesg ok "no oops, BUG or WARNING"; else step dmesg FAIL "$bad"; fi
