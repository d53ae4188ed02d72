"""The Python side of the session and password compatibility tests (test/sessions-python.test.ts).

Uses the real libraries the legacy tracker uses: Debian's python3-itsdangerous and python3-bcrypt.
Reads one JSON request on stdin, writes one JSON answer on stdout.
"""
import json
import sys
import time

import bcrypt
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class AgedSerializer(URLSafeTimedSerializer):
    """Mints tokens as if issued `age` seconds ago (the library reads time through get_timestamp)."""

    def __init__(self, *args, age=0, **kwargs):
        super().__init__(*args, **kwargs)
        self._age = age

    def make_signer(self, salt=None):
        signer = super().make_signer(salt)
        age = self._age
        signer.get_timestamp = lambda: int(time.time()) - age
        return signer


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "mint":
        s = AgedSerializer(req["key"], salt=req.get("salt", "itsdangerous"), age=req.get("age", 0))
        out = {"token": s.dumps(req["payload"])}
    elif op == "load":
        s = URLSafeTimedSerializer(req["key"], salt=req.get("salt", "itsdangerous"))
        try:
            out = {"ok": True, "payload": s.loads(req["token"], max_age=req["max_age"])}
        except SignatureExpired:
            out = {"ok": False, "error": "expired"}
        except BadSignature as e:
            out = {"ok": False, "error": type(e).__name__}
    elif op == "hash":
        out = {"hash": bcrypt.hashpw(req["password"].encode(), bcrypt.gensalt()).decode()}
    elif op == "check":
        out = {"ok": bcrypt.checkpw(req["password"].encode(), req["hash"].encode())}
    else:
        raise SystemExit(f"unknown op {op}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
