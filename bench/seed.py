#!/usr/bin/env python3
"""Seeds Baton's database for `scripts/bench.sh --scale N` straight into the tables (through the
API it would hash a million passwords): N accounts with one live session each and their security
events (a signup and a login), or, with `ended`, N sessions that ended long ago (for the purge).
The database must exist (a server started on it once). SQLite through Python's module;
PostgreSQL through psql. Prints the seconds it took.

    seed.py DATABASE_URL N live|ended
"""

import sqlite3
import subprocess
import sys
import time

url, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = int(time.time() * 1000)
day = 86_400_000
# Every account gets the same (real) hash: nobody logs in as them; the benchmark's users are its own.
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$bm90IGEgcmVhbCBoYXNoIGJ1dCB3ZWxsLWZvcm1lZA"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

# One statement per table over the numbers 1..N, in each database's own words for the row number
# `i`, a hex string of it (ids), and `x` random-looking but fixed (offsets within a day).
if url.startswith("sqlite:"):
    series = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) "
    hexid = "printf('%08x-5eed-4000-8000-%012x', {i}, {i})"
    concat = "||"
    mod = "(({i} * 7919) % 86400000)"
    source = "FROM c"
    day_sql = str(day)
else:
    series = ""
    hexid = "lpad(to_hex({i}), 8, '0') || '-5eed-4000-8000-' || lpad(to_hex({i}), 12, '0')"
    concat = "||"
    mod = "(({i}::bigint * 7919) % 86400000)"
    source = "FROM generate_series(1, {n}) AS c(i)"
    day_sql = f"{day}::bigint"

def sql(template):
    return template.format(
        series=series.format(n=n),
        uid=hexid.format(i="i"),
        sid=hexid.format(i=f"(i + {n if kind == 'ended' else 0})"),
        eid=hexid.format(i=f"(i + {(3 if kind == 'ended' else 1) * n})"),
        eid2=hexid.format(i=f"(i + {2 * n})"),
        x=mod.format(i="i"),
        source=source.format(n=n),
        now=now,
        day=day_sql,
    )

if kind == "live":
    statements = [
        sql("{series}INSERT INTO users (id, username, username_key, password_hash, created_at) "
            f"SELECT {{uid}}, 'scale' {concat} i, 'scale' {concat} i, '{HASH}', {{now}} - 20 * {{day}} - {{x}} {{source}}"),
        # Live: logged in within the last six days, used within the last day.
        sql("{series}INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, generation, "
            "rotated_at, access_jti, access_kid, issued_to_ip, issued_to_agent) "
            "SELECT {sid}, {uid}, {now} - 6 * {day} + {x}, {now} - {x}, {now} + 24 * {day} + {x}, "
            f"'{AGENT}', '10.0.' {concat} (i % 250) {concat} '.' {concat} (i % 199), 1 + i % 40, {{now}} - {{x}}, "
            f"{{sid}}, 'seed', '10.0.' {concat} (i % 250) {concat} '.' {concat} (i % 199), '{AGENT}' {{source}}"),
        sql("{series}INSERT INTO security_events (id, at, kind, user_id, session_id, ip, detail) "
            "SELECT {eid}, {now} - 20 * {day} - {x}, 'signup', {uid}, NULL, '10.0.0.1', NULL {source}"),
        sql("{series}INSERT INTO security_events (id, at, kind, user_id, session_id, ip, detail) "
            "SELECT {eid2}, {now} - 6 * {day} + {x}, 'login', {uid}, {sid}, '10.0.0.1', NULL {source}"),
    ]
else:
    # Ended over a year ago (expired, a third of them revoked first), of the same accounts.
    statements = [
        sql("{series}INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, revoked_reason, "
            "user_agent, ip, generation, rotated_at, access_jti, access_kid) "
            "SELECT {sid}, {uid}, {now} - 430 * {day} - {x}, {now} - 420 * {day} - {x}, {now} - 400 * {day} - {x}, "
            "CASE WHEN i % 3 = 0 THEN {now} - 420 * {day} END, CASE WHEN i % 3 = 0 THEN 'logout' END, "
            f"'{AGENT}', '10.0.0.1', 3, {{now}} - 420 * {{day}}, {{sid}}, 'seed' {{source}}"),
    ]

started = time.time()
if url.startswith("sqlite:"):
    db = sqlite3.connect(url.removeprefix("sqlite://").split("?")[0])
    db.execute("PRAGMA busy_timeout = 10000")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
else:
    script = "BEGIN;\n" + ";\n".join(statements) + ";\nCOMMIT;\nANALYZE;\n"
    subprocess.run(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", url], input=script, text=True, check=True)
print(f"{time.time() - started:.1f}")
