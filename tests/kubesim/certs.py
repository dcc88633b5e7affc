"""The cluster's certificate authority and the API server's serving certificate.

Clients verify the server exactly as they would a real cluster: the
kubeconfig carries the CA (`certificate-authority-data`) and the serving
certificate names 127.0.0.1 and localhost. Both are made fresh per kubesim
process with `trustme`, in memory; only the kubeconfig is written out.

Not here: client certificates. kubesim authenticates users by bearer token
(see `users.py`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trustme


@dataclass(frozen=True, kw_only=True)
class ServingCerts:
    ca_pem: bytes
    leaf: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.leaf.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this cluster's CA (for raw clients in tests)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def issue() -> ServingCerts:
    ca = trustme.CA(organization_name="kubesim")
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="kube-apiserver")
    return ServingCerts(ca_pem=ca.cert_pem.bytes(), leaf=leaf)
