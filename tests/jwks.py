"""A JWKS endpoint on loopback, for tests of JWTs signed by an OIDC provider's keys."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key set a test can change; counts the fetches."""

    def __init__(self):
        self.jwks = {"keys": []}
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, kid: str, private_key) -> None:
        if isinstance(private_key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True) | {"alg": "RS256"}
        else:
            jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True) | {"alg": "ES256"}
        self.jwks["keys"].append(jwk | {"kid": kid, "use": "sig"})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
