#!/usr/bin/env python3
"""For the benchmark's DPoP scenarios (examples/dpop_client.py logs in with a DPoP key). Each proof
is good once, so wrk needs one per request, made beforehand:

    dpop.py secret BASE USERNAME COUNT FILE
        the access token, then COUNT proofs for `GET /api/users/secret`, one per line, to FILE;
    dpop.py refresh BASE PREFIX CHAINS COUNT FILE
        CHAINS sessions, each its own key: FILE-1 … FILE-CHAINS hold the session's refresh token,
        then COUNT proofs for `POST /api/auth/refresh` by its key.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from dpop_client import Client  # noqa: E402

PASSWORD = "correct horse battery staple"
mode, base = sys.argv[1], sys.argv[2]
if mode == "secret":
    username, count, out = sys.argv[3], int(sys.argv[4]), sys.argv[5]
    client = Client(base)
    client.sign_up_or_log_in(username, PASSWORD)
    access = client.tokens["accessToken"]
    url = client.base + "/api/users/secret"
    with open(out, "w") as f:
        f.write(access + "\n")
        for _ in range(count):
            f.write(client.key.proof("GET", url, access) + "\n")
elif mode == "refresh":
    prefix, chains, count, out = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    for i in range(1, chains + 1):
        client = Client(base)
        client.sign_up_or_log_in(f"{prefix}{i}", PASSWORD)
        url = client.base + "/api/auth/refresh"
        with open(f"{out}-{i}", "w") as f:
            f.write(client.tokens["refreshToken"] + "\n")
            for _ in range(count):
                f.write(client.key.proof("POST", url) + "\n")
else:
    sys.exit(f"unknown mode {mode!r}")
