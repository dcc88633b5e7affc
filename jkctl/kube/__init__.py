"""Everything that speaks to the Kubernetes API: login, requests, watches, port-forward."""
