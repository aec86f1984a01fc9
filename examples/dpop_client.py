#!/usr/bin/env python3
"""A REST client of Baton with DPoP (RFC 9449): its tokens are bound to a P-256 key that never
leaves it, so a copy of them is worthless elsewhere.

    python3 examples/dpop_client.py http://127.0.0.1:3000 alice 'correct horse battery'

Needs the `cryptography` package. Signs up (or logs in if the name is taken), reads the secret,
refreshes, reads it again, and checks that the tokens do nothing without a proof. Exit status 0
when every step did what it should. The test command runs it against a real server.
"""

import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DpopKey:
    """A P-256 key pair; its private half stays in this process."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self) -> str:
        """RFC 7638: the required members in order, no whitespace, SHA-256."""
        canonical = json.dumps({k: self.jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A DPoP proof for one request: `htu` is the URL without query or fragment."""
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url.split("?")[0].split("#")[0], "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        # JWS wants r ‖ s, 32 bytes each, not the DER that cryptography returns.
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def call(method: str, url: str, body=None, headers=None):
    """(status, JSON body) of one request; errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class Client:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.key = DpopKey()
        self.tokens = None

    def _with_proof(self, method: str, path: str, body=None):
        url = self.base + path
        return call(method, url, body, {"DPoP": self.key.proof(method, url)})

    def sign_up_or_log_in(self, username: str, password: str):
        credentials = {"username": username, "password": password}
        status, body = self._with_proof("POST", "/api/auth/signup", credentials)
        if status == 409:
            status, body = self._with_proof("POST", "/api/auth/login", credentials)
        expect(status in (200, 201), f"login: {status} {body}")
        self.tokens = body

    def refresh(self):
        status, body = self._with_proof("POST", "/api/auth/refresh", {"refreshToken": self.tokens["refreshToken"]})
        expect(status == 200, f"refresh: {status} {body}")
        self.tokens = body

    def get(self, path: str, proof: bool = True):
        url = self.base + path
        access = self.tokens["accessToken"]
        headers = {"Authorization": f"DPoP {access}"}
        if proof:
            headers["DPoP"] = self.key.proof("GET", url, access)
        return call("GET", url, headers=headers)


def expect(ok: bool, what: str):
    if not ok:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    base, username, password = (sys.argv[1:] + [None, None, None])[:3]
    if not base:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    client = Client(base)
    client.sign_up_or_log_in(username or "dpop-example", password or "correct horse battery")
    expect(client.tokens["tokenType"] == "DPoP", f"a DPoP session: {client.tokens['tokenType']}")
    status, secret = client.get("/api/users/secret")
    expect(status == 200, f"secret: {status} {secret}")
    print(f"secret: {secret['message']}")
    client.refresh()
    status, _ = client.get("/api/users/secret")
    expect(status == 200, f"secret after a refresh: {status}")
    # What a thief with a copy of the tokens and no key gets.
    status, body = client.get("/api/users/secret", proof=False)
    expect(status == 401 and body["error"] == "invalid_dpop_proof", f"no proof: {status} {body}")
    thief = Client(base)
    thief.tokens = client.tokens
    status, body = thief._with_proof("POST", "/api/auth/refresh", {"refreshToken": client.tokens["refreshToken"]})
    expect(status == 401 and body["error"] == "invalid_dpop_proof", f"another key: {status} {body}")
    print(f"bound to key {client.key.thumbprint()}: copied tokens refused without it")


if __name__ == "__main__":
    main()
