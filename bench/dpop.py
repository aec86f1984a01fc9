#!/usr/bin/env python3
"""For the benchmark's DPoP scenario: logs a user in with a DPoP key (examples/dpop_client.py) and
writes the access token and COUNT fresh proofs for `GET /api/users/secret`, one per line, to FILE:
each proof is good once, so wrk needs one per request.

    dpop.py BASE USERNAME COUNT FILE
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from dpop_client import Client  # noqa: E402

base, username, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
client = Client(base)
client.sign_up_or_log_in(username, "correct horse battery staple")
access = client.tokens["accessToken"]
url = client.base + "/api/users/secret"
with open(out, "w") as f:
    f.write(access + "\n")
    for _ in range(count):
        f.write(client.key.proof("GET", url, access) + "\n")
