"""Prints the benchmark's table from the lines bench/report.lua appended: each Baton figure with
its ratio to its reference, measured in the same run (machines are noisy; ratios travel)."""
import os
import sys

rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99, errors = line.rstrip("\n").split("\t")
    rows[name] = (float(rps), float(p50), float(p99), int(errors))
hash_ms = float(sys.argv[2])
cores = os.cpu_count() or 1
hello = rows["hello (bare axum)"][0]
with_headers = rows.get("hello + Baton's headers", (hello,))[0]
login_bound = cores / (hash_ms / 1000)


def simplejwt(name):
    """The same call on DRF SimpleJWT in this run, if the benchmark ran it: (req/s, p99)."""
    if "(" not in name or name.endswith("(SimpleJWT)") or "DPoP" in name or "flood" in name:
        return None
    row = rows.get(name[: name.index("(")] + "(SimpleJWT)")
    return row and (row[0], row[2])


def flood_reference(name):
    """The bare hello (with Baton's headers) during the same login flood, if measured."""
    return rows.get(f"hello + Baton's headers during login flood {name[name.index('('):]}")


def reference(name):
    if name.startswith("secret with DPoP"):
        # Against bearer calls of the same run: what binding the token costs.
        label = name[name.index("("):]
        return rows.get(f"secret {label}", (hello,))[0], "bearer secret"
    if name.startswith("login"):
        return login_bound, f"{cores} cores / one hash"
    if name.startswith("secret during login flood") and flood_reference(name):
        return flood_reference(name)[0], "hello with the same headers in the same flood"
    if name.startswith("refresh"):
        return 6000.0, "goal 6,000 req/s"
    return hello, "bare axum hello"


print()
print(f"{'scenario':<52} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  ratio to reference")
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
        python = simplejwt(name)
        if python:
            ratio += f"; {rps / python[0]:.1f}x SimpleJWT (p99 {python[1]:.0f} ms there)"
    flag = "  (errors: not a figure)" if errors else ""
    print(f"{name:<52} {rps:>10.1f} {p50:>8.2f} {p99:>8.2f} {errors:>8}  {ratio}{flag}")
print(f"one Argon2id hash (19 MiB, t=2): {hash_ms:.2f} ms; login bound {cores} cores / hash = {login_bound:.1f} req/s")
