"""A small OpenID Connect provider for the end-to-end tests, on 127.0.0.1 (run as a subprocess).

    python tests/oidc_provider.py --port PORT --config provider.json

``provider.json``: ``{"clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
"accounts": {"a@clinic.example": {"password": "...", "sub": "...",
"previous_sign_in_ago": SECONDS}}}`` (the last optional: see :meth:`Provider.issue_code`).

It speaks the authorization-code flow as Streamlit's ``st.login`` (through Authlib) uses it, and
is strict where a real provider is: the discovery document, an authorization endpoint that shows
a sign-in form (account and password), PKCE with S256 required, the nonce carried into the ID
token, codes single-use and short-lived and bound to the client, the redirect URI and the PKCE
challenge, the client authenticated at the token endpoint (``client_secret_basic`` or
``client_secret_post``), ID tokens signed with RS256 by a key published at the JWKS endpoint,
with ``iss``, ``aud``, ``sub``, ``email``, ``auth_time``, ``iat``, ``exp``, ``nonce``; a userinfo
endpoint and an end-session endpoint. Every request is written to stdout as one JSON line, so
that a test can see what the client asked for. Tokens are signed with Authlib's JOSE library
(joserfc) and the PKCE challenge is computed with Authlib's own function.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 60
TOKEN_TTL_S = 3600


class Provider:
    def __init__(self, issuer: str, config: dict):
        self.issuer = issuer
        self.clients = {c["client_id"]: c for c in config["clients"]}
        self.accounts = {k.lower(): v for k, v in config["accounts"].items()}
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig",
                                                         "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.lock = threading.Lock()

    def metadata(self) -> dict:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "auth_time", "nonce"],
        }

    def check_request(self, q: dict) -> str | None:
        """What is wrong with an authorization request, or ``None``."""
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return "unknown client_id"
        if q.get("redirect_uri") not in client["redirect_uris"]:
            return "redirect_uri is not registered for this client"
        if q.get("response_type") != "code":
            return "response_type must be code"
        if "openid" not in q.get("scope", "").split():
            return "scope must include openid"
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return "PKCE with S256 is required"
        if not q.get("nonce"):
            return "a nonce is required"
        return None

    def issue_code(self, q: dict, account: str) -> str:
        code = secrets.token_urlsafe(24)
        # An account may say it signed in at the provider a while ago (a provider session the
        # browser already had): its first ID token then carries that older auth_time.
        ago = self.accounts[account].pop("previous_sign_in_ago", 0)
        with self.lock:
            self.codes[code] = {"client_id": q["client_id"], "redirect_uri": q["redirect_uri"],
                                "challenge": q["code_challenge"], "nonce": q["nonce"],
                                "account": account, "auth_time": int(time.time() - ago),
                                "expires": time.time() + CODE_TTL_S}
        return code

    def token(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            raw = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = raw.partition(":")
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(str(secret), client["client_secret"]):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier") or ""
        if create_s256_code_challenge(verifier) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        account = grant["account"]
        claims = {"iss": self.issuer, "aud": client_id, "sub": self.accounts[account]["sub"],
                  "email": account, "email_verified": True,
                  "name": self.accounts[account].get("name", account),
                  "auth_time": grant["auth_time"], "iat": now, "exp": now + TOKEN_TTL_S,
                  "nonce": grant["nonce"]}
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, self.key)
        access = secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens[access] = claims
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL_S,
                     "id_token": id_token, "scope": "openid email profile"}


FORM = """<!doctype html><html><head><title>Test identity provider</title></head><body>
<h1>Sign in to the test identity provider</h1>{error}
<form method="post" action="/authorize">{hidden}
<label>Account <input id="account" name="account" autocomplete="off"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button></form></body></html>"""


def make_handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # the JSON lines below instead
            pass

        def _log(self, **what):
            print(json.dumps({"method": self.command, "path": urlsplit(self.path).path, **what}),
                  flush=True)

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict):
            self._send(status, json.dumps(data).encode(), "application/json")

        def _redirect(self, url: str):
            self._send(302, b"", "text/plain", {"Location": url})

        def _form(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            return {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}

        def _page(self, q: dict, error: str = "", status: int = 200):
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in q.items() if k not in ("account", "password"))
            err = f'<p id="error">{html.escape(error)}</p>' if error else ""
            self._send(status, FORM.format(error=err, hidden=hidden).encode(), "text/html")

        def do_GET(self):
            parts = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._log()
                return self._json(200, provider.metadata())
            if parts.path == "/jwks":
                self._log()
                return self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            if parts.path == "/authorize":
                self._log(query={k: v for k, v in q.items()})
                problem = provider.check_request(q)
                if problem:
                    return self._send(400, problem.encode(), "text/plain")
                return self._page(q)
            if parts.path == "/userinfo":
                auth = self.headers.get("Authorization", "")
                claims = provider.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
                self._log(ok=claims is not None)
                if claims is None:
                    return self._json(401, {"error": "invalid_token"})
                return self._json(200, {k: claims[k] for k in ("sub", "email", "email_verified",
                                                               "name")})
            if parts.path == "/logout":
                self._log(query=q)
                target = q.get("post_logout_redirect_uri")
                client = provider.clients.get(q.get("client_id", ""))
                if target and client and target in client["redirect_uris"]:
                    return self._redirect(target)
                return self._send(200, b"signed out", "text/plain")
            self._send(404, b"not found", "text/plain")

        def do_POST(self):
            path = urlsplit(self.path).path
            form = self._form()
            if path == "/authorize":
                problem = provider.check_request(form)
                if problem:
                    self._log(error=problem)
                    return self._send(400, problem.encode(), "text/plain")
                account = form.get("account", "").strip().lower()
                known = provider.accounts.get(account)
                if known is None or not secrets.compare_digest(form.get("password", ""),
                                                               known["password"]):
                    self._log(account=account, ok=False)
                    return self._page(form, "Account or password not recognised.", 200)
                self._log(account=account, ok=True)
                code = provider.issue_code(form, account)
                return self._redirect(form["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": form.get("state", "")}))
            if path == "/token":
                status, body = provider.token(form, self.headers.get("Authorization"))
                self._log(status=status, pkce=bool(form.get("code_verifier")),
                          error=body.get("error_description") or body.get("error"))
                return self._json(status, body)
            self._send(404, b"not found", "text/plain")

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    issuer = f"http://127.0.0.1:{args.port}"
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Provider(issuer, config)))
    print(json.dumps({"listening": issuer}), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
