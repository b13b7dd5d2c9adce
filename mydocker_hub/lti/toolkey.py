"""The tool's own RSA key: signs deep-linking responses, published at ``/hub/lti13/jwks``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class ToolKey:
    def __init__(self, private_pem: bytes):
        self._private_key = serialization.load_pem_private_key(private_pem, password=None)
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key()))
        thumbprint = json.dumps({k: public_jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
        self.kid = hashlib.sha256(thumbprint.encode()).hexdigest()[:16]
        self.public_jwk = {**public_jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    @classmethod
    def load_or_create(cls, path: Path | str) -> ToolKey:
        """Read the PEM at ``path``, creating it (mode 0600) on first start."""
        path = Path(path)
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        return cls(path.read_bytes())

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.kid})
