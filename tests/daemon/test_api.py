"""The daemon's REST API: models as Jupyter Server returns them, errors, auth, sessions."""

from __future__ import annotations

import datetime
import http.client
import json
import urllib.parse
import urllib.request

import pytest

from tests.processes import RunningDaemon


def raw_request(
    daemon: RunningDaemon, method: str, path: str, *, body: bytes | None = None, **headers: str
) -> tuple[int, bytes, http.client.HTTPMessage]:
    """A request with exactly the headers given (the Host header included)."""
    parsed = urllib.parse.urlparse(daemon.url)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


def test_api_version(daemon: RunningDaemon) -> None:
    status, model = daemon.request("GET", "/api")
    assert status == 200
    assert model["version"].startswith("2.")


def test_kernelspecs_are_listed_with_their_resources(daemon: RunningDaemon) -> None:
    status, model = daemon.request("GET", "/api/kernelspecs")
    assert status == 200
    assert model["default"] == "python3"
    python3 = model["kernelspecs"]["python3"]
    assert python3["name"] == "python3"
    assert python3["spec"]["display_name"] == "Python 3 (jkctl)"
    assert python3["spec"]["language"] == "python"
    assert python3["spec"]["metadata"]["jkctl"]["image"]
    assert python3["resources"]["logo-64x64"] == "/kernelspecs/python3/logo-64x64.png"
    assert {"crashes", "signal-python"} <= set(model["kernelspecs"])
    status, single = daemon.request("GET", "/api/kernelspecs/python3")
    assert status == 200
    assert single == python3


def test_kernelspec_logo_is_served(daemon: RunningDaemon) -> None:
    status, body, headers = raw_request(
        daemon,
        "GET",
        "/kernelspecs/python3/logo-64x64.png",
        Authorization=f"token {daemon.token}",
    )
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert body.startswith(b"\x89PNG")
    for escape in ["..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "no-such-logo.png"]:
        status, _, _ = raw_request(
            daemon, "GET", f"/kernelspecs/python3/{escape}", Authorization=f"token {daemon.token}"
        )
        assert status == 404, escape


def test_unknown_kernelspec_is_404_with_a_clear_message(daemon: RunningDaemon) -> None:
    status, error = daemon.request("POST", "/api/kernels", {"name": "no-such-spec"})
    assert status == 404
    assert error["message"] == "There is no kernelspec named 'no-such-spec'."
    assert "python3" in error["reason"]
    assert error["reference"] == "kernelspec-not-found"
    status, error = daemon.request("GET", "/api/kernelspecs/no-such-spec")
    assert status == 404
    assert "no-such-spec" in error["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400(daemon: RunningDaemon, body: bytes) -> None:
    status, raw, _ = raw_request(
        daemon, "POST", "/api/kernels", body=body, Authorization=f"token {daemon.token}"
    )
    assert status == 400
    error = json.loads(raw)
    assert error["message"].startswith("The request body is not valid JSON")
    assert error["reason"]


def test_a_json_body_that_is_not_an_object_is_400(daemon: RunningDaemon) -> None:
    status, error = daemon.request("POST", "/api/kernels", ["python3"])
    assert status == 400
    assert "JSON object" in error["message"]


def test_kernel_model_is_shaped_like_jupyter_servers(daemon: RunningDaemon, kernel_id: str) -> None:
    status, model = daemon.request("GET", f"/api/kernels/{kernel_id}")
    assert status == 200
    assert set(model) == {"id", "name", "last_activity", "execution_state", "connections"}
    assert model["name"] == "python3"
    assert model["execution_state"] == "idle"
    assert model["connections"] == 0
    # GatewayClient parses last_activity with exactly this format.
    datetime.datetime.strptime(model["last_activity"], "%Y-%m-%dT%H:%M:%S.%fZ")
    status, kernels = daemon.request("GET", "/api/kernels")
    assert model in kernels


def test_unknown_kernel_is_404(daemon: RunningDaemon) -> None:
    for method, path in [
        ("GET", "/api/kernels/00000000-0000-0000-0000-000000000000"),
        ("DELETE", "/api/kernels/00000000-0000-0000-0000-000000000000"),
        ("POST", "/api/kernels/00000000-0000-0000-0000-000000000000/restart"),
        ("POST", "/api/kernels/00000000-0000-0000-0000-000000000000/interrupt"),
    ]:
        status, error = daemon.request(method, path)
        assert status == 404, (method, path)
        assert error["reference"] == "kernel-not-found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "token wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_requests_without_a_valid_token_are_401(
    daemon: RunningDaemon, headers: dict[str, str]
) -> None:
    for path in ["/api", "/api/kernels", "/api/kernelspecs", "/api/sessions"]:
        status, raw, _ = raw_request(daemon, "GET", path, **headers)
        assert status == 401, path
        assert json.loads(raw)["message"] == "The request has no valid jkctl token."


def test_token_in_the_query_or_as_bearer_is_accepted(daemon: RunningDaemon) -> None:
    status, _, _ = raw_request(daemon, "GET", f"/api/kernels?token={daemon.token}")
    assert status == 200
    status, _, _ = raw_request(daemon, "GET", "/api/kernels?token=wrong")
    assert status == 401
    status, _, _ = raw_request(daemon, "GET", "/api", Authorization=f"Bearer {daemon.token}")
    assert status == 200


def test_host_must_be_loopback(daemon: RunningDaemon) -> None:
    port = urllib.parse.urlparse(daemon.url).port
    auth = f"token {daemon.token}"
    status, _, _ = raw_request(daemon, "GET", "/api", Host=f"localhost:{port}", Authorization=auth)
    assert status == 200
    status, raw, _ = raw_request(
        daemon, "GET", "/api", Host=f"evil.example:{port}", Authorization=auth
    )
    assert status == 403
    assert "127.0.0.1" in json.loads(raw)["message"]


def test_origin_must_be_the_daemons_own(daemon: RunningDaemon) -> None:
    auth = f"token {daemon.token}"
    status, _, _ = raw_request(daemon, "GET", "/api", Origin=daemon.url, Authorization=auth)
    assert status == 200
    status, raw, _ = raw_request(
        daemon, "GET", "/api", Origin="https://evil.example", Authorization=auth
    )
    assert status == 403
    assert "evil.example" in json.loads(raw)["message"]


def test_unknown_routes_answer_json(daemon: RunningDaemon) -> None:
    status, error = daemon.request("GET", "/api/nothing-here")
    assert status == 404
    assert error["message"]


def test_sessions_api(daemon: RunningDaemon) -> None:
    status, session = daemon.request(
        "POST",
        "/api/sessions",
        {"path": "work/a.ipynb", "type": "notebook", "name": "a", "kernel": {"name": "python3"}},
    )
    assert status == 201, session
    assert set(session) == {"id", "path", "name", "type", "kernel", "notebook"}
    assert session["kernel"]["name"] == "python3"
    assert session["notebook"] == {"path": "work/a.ipynb", "name": "a"}
    first_kernel = session["kernel"]["id"]

    # The same path gives the same session.
    status, again = daemon.request(
        "POST", "/api/sessions", {"path": "work/a.ipynb", "type": "notebook"}
    )
    assert status == 201
    assert again["id"] == session["id"]

    status, listed = daemon.request("GET", "/api/sessions")
    assert [s["id"] for s in listed] == [session["id"]]

    status, renamed = daemon.request(
        "PATCH", f"/api/sessions/{session['id']}", {"path": "work/b.ipynb"}
    )
    assert status == 200
    assert renamed["path"] == "work/b.ipynb"
    assert renamed["kernel"]["id"] == first_kernel

    # A new kernel name starts a new kernel and shuts the old one down.
    status, switched = daemon.request(
        "PATCH", f"/api/sessions/{session['id']}", {"kernel": {"name": "python3"}}
    )
    assert status == 200
    assert switched["kernel"]["id"] != first_kernel
    status, _ = daemon.request("GET", f"/api/kernels/{first_kernel}")
    assert status == 404

    status, _ = daemon.request("DELETE", f"/api/sessions/{session['id']}")
    assert status == 204
    status, _ = daemon.request("GET", f"/api/kernels/{switched['kernel']['id']}")
    assert status == 404
    status, error = daemon.request("GET", f"/api/sessions/{session['id']}")
    assert status == 404
    assert error["reference"] == "session-not-found"


def test_sessions_need_a_path_and_a_type(daemon: RunningDaemon) -> None:
    status, error = daemon.request("POST", "/api/sessions", {"type": "notebook"})
    assert status == 400
    assert error["message"] == "Missing field in JSON data: path."


def test_a_session_goes_when_its_kernel_goes(daemon: RunningDaemon) -> None:
    status, session = daemon.request(
        "POST", "/api/sessions", {"path": "c.ipynb", "type": "notebook"}
    )
    assert status == 201
    daemon.request("DELETE", f"/api/kernels/{session['kernel']['id']}")
    status, listed = daemon.request("GET", "/api/sessions")
    assert session["id"] not in [s["id"] for s in listed]


def test_launch_env_cannot_carry_structure(daemon: RunningDaemon) -> None:
    status, error = daemon.request(
        "POST",
        "/api/kernels",
        {"name": "python3", "env": {"KERNEL_USERNAME": {"nested": "yaml: [injection]"}}},
    )
    assert status == 400
    assert "KERNEL_USERNAME" in error["message"]


def test_urllib_round_trip_of_start_and_delete(daemon: RunningDaemon) -> None:
    request = urllib.request.Request(
        daemon.url + "/api/kernels",
        data=json.dumps({"name": "python3", "env": {"KERNEL_USERNAME": "ada"}}).encode(),
        method="POST",
        headers={"Authorization": f"token {daemon.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        model = json.loads(response.read())
        assert response.headers["Location"] == f"/api/kernels/{model['id']}"
    status, _ = daemon.request("DELETE", f"/api/kernels/{model['id']}")
    assert status == 204
