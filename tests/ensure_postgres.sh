#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use is reachable. With CI=true it must be: start the local
# cluster if it is down and fail if it still cannot be reached. Elsewhere, exit 3 to skip.
set -u
url=${CPL_TEST_DATABASE_URL:-postgresql+asyncpg://127.0.0.1:5432/test}
check() { .venv/bin/python - "$url" <<'PY'
import asyncio, sys
import asyncpg
from sqlalchemy.engine import make_url
u = make_url(sys.argv[1])
async def main():
    c = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                              user=u.username or "postgres", password=u.password,
                              database=u.database, timeout=5)
    await c.close()
try:
    asyncio.run(main())
except Exception as e:
    print(f"PostgreSQL not reachable: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
PY
}
check && exit 0
if [ "${CI:-}" = "true" ]; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do check 2>/dev/null && exit 0; sleep 1; done
  fi
  echo "CI=true: the PostgreSQL test run is mandatory and PostgreSQL cannot be reached" >&2
  exit 1
fi
exit 3
