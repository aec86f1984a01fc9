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


def reference(name):
    if name.startswith("secret with DPoP"):
        # Against bearer calls of the same run: what binding the token costs.
        label = name[name.index("("):]
        return rows.get(f"secret {label}", (hello,))[0], "bearer secret"
    if name.startswith("login"):
        return login_bound, f"{cores} cores / one hash"
    if name.startswith("refresh"):
        return 6000.0, "goal 6,000 req/s"
    return hello, "bare axum hello"


print()
print(f"{'scenario':<40} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  ratio to reference")
for name, (rps, p50, p99, errors) in rows.items():
    if name == "hello (bare axum)":
        ratio = ""
    else:
        ref, what = reference(name)
        ratio = f"{rps / ref:5.2f}x {what}"
        if what == "bare axum hello" and not name.startswith("hello"):
            ratio += f"  ({rps / with_headers:4.2f}x hello with the same headers)"
    flag = "  (errors: not a figure)" if errors else ""
    print(f"{name:<40} {rps:>10.1f} {p50:>8.2f} {p99:>8.2f} {errors:>8}  {ratio}{flag}")
print(f"one Argon2id hash (19 MiB, t=2): {hash_ms:.2f} ms; login bound {cores} cores / hash = {login_bound:.1f} req/s")
