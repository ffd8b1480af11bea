"""Plays the gateway: fetch the JWKS, pick the key by kid, verify RS256, issuer, audience, expiry.

Usage: gateway-validator.py <jwks_url> <issuer> <audience> <token>...
Prints one JSON line per token: {"ok": true, "kid": ..., "sub": ...} or {"ok": false, "error": ...}.
"""
import json
import sys

import jwt

jwks_url, issuer, audience, *tokens = sys.argv[1:]
client = jwt.PyJWKClient(jwks_url, cache_keys=False)
for token in tokens:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "at+jwt":
            raise ValueError("typ is not at+jwt")
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        print(json.dumps({"ok": True, "kid": header.get("kid"), "sub": claims["sub"], "tid": claims.get("tid")}))
    except Exception as e:  # noqa: BLE001 - report every failure as data
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
