#!/usr/bin/env bash
# Self-test of tests/testbed/testbed: idempotent up, down stops everything, and up after
# down comes back clean. Takes ~1-2 minutes; NOT part of .ci/run (slow). Run by hand:
#   tests/testbed/selftest.sh
# It leaves the bed running (clean) at the end.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TB="$HERE/testbed"
ROOT="$(cd "$HERE/../.." && pwd)"
fail() { echo "SELFTEST FAIL: $*" >&2; exit 1; }
pids() { cat "$ROOT"/.testbed/run/*.pid 2>/dev/null | sort | tr '\n' ' '; }
src_sql() { mariadb --no-defaults -uroot -S "$ROOT/.testbed/db-source/mysqld.sock" -N -B -e "$1"; }
tgt_sql() { mariadb --no-defaults -uroot -S "$ROOT/.testbed/db-target/mysqld.sock" -N -B -e "$1"; }

echo "1. up"
"$TB" up
"$TB" status >/dev/null || fail "status not 0 after up"
before="$(pids)"

echo "2. up again is a no-op"
t0=$SECONDS
"$TB" up
(( SECONDS - t0 < 20 )) || fail "second up took $((SECONDS - t0)) s"
[[ "$(pids)" == "$before" ]] || fail "second up changed pids: $before -> $(pids)"

echo "3. leave a marker row, then down"
src_sql "INSERT INTO nacos.tenant_info(kp,tenant_id,tenant_name,gmt_create,gmt_modified) VALUES('1','selftest-marker','m',0,0)"
for _ in $(seq 50); do [[ "$(tgt_sql "SELECT COUNT(*) FROM nacos.tenant_info WHERE tenant_id='selftest-marker'")" == 1 ]] && break; sleep 0.2; done
[[ "$(tgt_sql "SELECT COUNT(*) FROM nacos.tenant_info WHERE tenant_id='selftest-marker'")" == 1 ]] || fail "marker did not replicate"
"$TB" down
set +e; "$TB" status >/dev/null; rc=$?; set -e
[[ $rc == 3 ]] || fail "status after down returned $rc, want 3"
alive() { [[ -d /proc/$1 ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
for p in $before; do alive "$p" && fail "pid $p still alive after down"; done
for port in 13306 13307 18848 18858 18868 18948 18958; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port still open after down"; fi
done
if "$TB" env >/dev/null 2>&1; then fail "env succeeded while the bed is down"; fi

echo "4. up after down is clean"
"$TB" up
"$TB" status >/dev/null || fail "status not 0 after second up"
[[ "$(src_sql "SELECT COUNT(*) FROM nacos.tenant_info WHERE tenant_id='selftest-marker'")" == 0 ]] || fail "source DB not wiped"
[[ "$(tgt_sql "SELECT COUNT(*) FROM nacos.config_info")" == 0 ]] || fail "target DB not clean"
envout="$("$TB" env)" || fail "env failed after up"
grep -q '^export TESTBED_TARGET_NACOS=' <<<"$envout" || fail "env output: $envout"
echo "SELFTEST OK"
