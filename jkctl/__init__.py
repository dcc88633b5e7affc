"""jkctl: Jupyter kernels as pods on a shared Kubernetes cluster, driven from the laptop."""

__version__ = "0.1.0"
