"""Network failures on the way to the API server, as :class:`~jkctl.errors.KubeUnavailable`.

When the API server never answers — connection refused, a name that does not
resolve, a certificate that does not verify, a timeout, a connection cut
mid-answer — aiohttp, ssl and the OS each raise their own exceptions. This
module is where they become one error type whose message names the server
and says what to check. API *answers* (a `Status`) are :mod:`.status`'s job.
"""

from __future__ import annotations

import os
import ssl

import aiohttp

from jkctl.errors import KubeError, KubeUnavailable

from .status import Action

#: What every "cannot reach" error suggests.
_CHECK_REACH = (
    "check that the cluster is up and that this machine can reach it "
    "(VPN, network, proxy); kubectl cluster-info shows the same problem"
)

#: The exceptions that mean "no usable answer came back"; translate them with
#: :func:`unavailable_error`.
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def unavailable_error(  # noqa: PLR0911 -- one return per failure kind
    exc: BaseException, *, server: str, action: Action, timeout: float | None = None
) -> KubeError:
    """The jkctl error for a transport failure while trying to ``action``."""
    doing = action.target()
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return KubeUnavailable(
            f"the Kubernetes API server at {server} presented a certificate that does not "
            f"verify ({exc.certificate_error})",
            hint="check the cluster's certificate-authority in your kubeconfig; it may belong "
            "to another cluster, or the server's certificate was replaced",
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | ssl.SSLError):
        return KubeUnavailable(
            f"the TLS handshake with the Kubernetes API server at {server} failed ({exc})",
            hint="check the kubeconfig's certificates (a client certificate may have expired) "
            "and that the server URL is the API server's",
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return KubeUnavailable(
            f"the Kubernetes API server's host name in {server} does not resolve",
            hint=f"check the server URL in your kubeconfig; {_CHECK_REACH}",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = os.strerror(errno) if errno else str(exc.os_error)
        return KubeUnavailable(
            f"cannot connect to the Kubernetes API server at {server} ({reason.lower()})",
            hint=_CHECK_REACH,
        )
    if isinstance(exc, TimeoutError):
        after = f" within {timeout:g} s" if timeout is not None else ""
        return KubeUnavailable(
            f"the Kubernetes API server at {server} did not answer{after} when asked to {doing}",
            hint=f"retry; if it keeps happening the cluster is overloaded, or {_CHECK_REACH}",
        )
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | ConnectionError
    ):
        return KubeUnavailable(
            f"the Kubernetes API server at {server} closed the connection while asked to {doing}",
            hint=f"retry; if it keeps happening {_CHECK_REACH}",
            context=str(exc) or type(exc).__name__,
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return KubeError(
            f"the Kubernetes API server URL {server} is not a valid URL",
            hint="fix the cluster's server field in your kubeconfig",
        )
    return KubeUnavailable(
        f"talking to the Kubernetes API server at {server} failed while asked to {doing}",
        hint=_CHECK_REACH,
        context=f"{type(exc).__name__}: {exc}",
    )
