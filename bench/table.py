"""Prints the benchmark's table from the lines bench/report.lua appended: each Baton figure with
its ratio to its reference, measured in the same run (machines are noisy; ratios travel), and the
server's peak RSS during it.

    table.py FIGURES HASH_MS HASH_ALL_MS [RSS]

HASH_MS: one hash alone; HASH_ALL_MS: one hash while every core hashes (bench-reference hash).
"""
import os
import sys

rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99, errors = line.rstrip("\n").split("\t")
    rows[name] = (float(rps), float(p50), float(p99), int(errors))
hash_ms = float(sys.argv[2])
hash_all_ms = float(sys.argv[3])
rss = {}
if len(sys.argv) > 4:
    for line in open(sys.argv[4]):
        name, kib = line.rstrip("\n").split("\t")
        rss[name] = int(kib) / 1024
cores = len(os.sched_getaffinity(0))  # as bench-reference counts them (available_parallelism)
hello = rows["hello (bare axum)"][0]
with_headers = rows.get("hello + Baton's headers", (hello,))[0]
login_bound = cores / (hash_ms / 1000)
# What the cores can hash when all of them do: they share one cache and one memory bus.
login_bound_together = cores / (hash_all_ms / 1000)
# A fair queue of 32 logins: each waits for the 31 before it, shared by the cores; twice that.
login_p99_goal = 2 * 32 * hash_ms / cores


def label(name):
    return name[name.index("(") :] if "(" in name else ""


def scenario(name):
    return name[: name.index("(")] if "(" in name else name


def simplejwt(name):
    """The same call on DRF SimpleJWT in this run, if the benchmark ran it: (req/s, p50, p99)."""
    if "(" not in name or name.endswith("(SimpleJWT)") or "DPoP" in name or "flood" in name or "@" in name:
        return None
    row = rows.get(scenario(name) + "(SimpleJWT)")
    return row and (row[0], row[1], row[2])


def flood_reference(name):
    """The bare hello (with Baton's headers) during the same login flood, if measured."""
    return rows.get(f"hello + Baton's headers during login flood {label(name)}")


def empty_database(name):
    """At scale: the same scenario on the same database, empty, in this run."""
    if "@" not in name:
        return None
    database = label(name)[1:].split(" @")[0]
    return rows.get(f"{scenario(name)}({database})")


def reference(name):
    if name.startswith("secret during the purge"):
        return rows.get(f"secret after the purge {label(name)}", (hello,))[0], "the secret after the purge"
    if empty_database(name):
        return empty_database(name)[0], "the same on the empty database"
    if name.startswith("secret with DPoP"):
        # Against bearer calls of the same run: what binding the token costs.
        return rows.get(f"secret {label(name)}", (hello,))[0], "bearer secret"
    if name.startswith("refresh with DPoP"):
        return rows.get(f"refresh, 32 chains {label(name)}", (hello,))[0], "bearer refresh"
    if name.startswith("login"):
        return login_bound, f"{cores} cores / one hash"
    if name.startswith("secret during login flood") and flood_reference(name):
        return flood_reference(name)[0], "hello with the same headers in the same flood"
    if name.startswith("refresh"):
        return 6000.0, "goal 6,000 req/s"
    return hello, "bare axum hello"


print()
print(f"{'scenario':<56} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'RSS MB':>7}  ratio to reference")
for name, (rps, p50, p99, errors) in rows.items():
    if name == "hello (bare axum)":
        ratio = ""
    elif name.endswith("(SimpleJWT)"):
        ratio = "(the Python reference)"
    else:
        ref, what = reference(name)
        ratio = f"{rps / ref:5.2f}x {what}"
        if what == "bare axum hello" and not name.startswith("hello"):
            ratio += f"  ({rps / with_headers:4.2f}x hello with the same headers)"
        if what.endswith("in the same flood"):
            ratio += f" (p99 {flood_reference(name)[2]:.2f} ms there)"
        if what == "the same on the empty database":
            ratio += f", p99 {p99 / empty_database(name)[2]:.2f}x"
        if what == "the secret after the purge":
            quiet = rows.get(f"secret after the purge {label(name)}")
            ratio += f", p99 {p99 / quiet[2]:.2f}x (goal < 2x)" if quiet else ""
        if what.endswith("one hash"):
            ratio += f" ({rps / login_bound_together:4.2f}x cores / one hash while every core hashes)"
        if name.startswith("login"):
            ratio += f", p99 {p99 / login_p99_goal:.2f}x the fair-queue goal ({login_p99_goal:.0f} ms)"
        python = simplejwt(name)
        if python:
            ratio += f"; {rps / python[0]:.1f}x SimpleJWT (p50 {python[1]:.0f}, p99 {python[2]:.0f} ms there)"
    flag = "  (errors: not a figure)" if errors else ""
    memory = f"{rss[name]:7.1f}" if name in rss else f"{'':>7}"
    print(f"{name:<56} {rps:>10.1f} {p50:>8.2f} {p99:>8.2f} {errors:>8} {memory}  {ratio}{flag}")
print(f"one Argon2id hash (19 MiB, t=2): {hash_ms:.2f} ms; login bound {cores} cores / hash = {login_bound:.1f} req/s")
print(f"one hash while {cores} cores hash at once: {hash_all_ms:.2f} ms; {cores} cores / that = {login_bound_together:.1f} req/s")
if rss:
    print(f"peak RSS of any scenario: {max(rss.values()):.1f} MB (goal 100 MB)")
