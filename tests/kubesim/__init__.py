"""kubesim: a small Kubernetes API server and kubelet for jkctl's tests (see kubesim.md)."""
