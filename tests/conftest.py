"""Suite-wide fixtures: kubesim's (`kubesim`, `kube_namespace`) come from its plugin."""

pytest_plugins = ["tests.kubesim.fixture"]
