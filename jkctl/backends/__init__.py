"""Where kernels run: Kubernetes pods, or local subprocesses."""
