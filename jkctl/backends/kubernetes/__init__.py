"""The Kubernetes backend: each kernel a pod, its traffic tunnelled through the API server.

- :mod:`.backend` -- :class:`~.backend.KubernetesBackend`: login, permission
  check, the pod watch, launch and discovery;
- :mod:`.kernel` -- :class:`~.kernel.KubeKernel`, one kernel: tunnel,
  lifecycle facts, restart, shutdown, detach;
- :mod:`.manifests` -- the Secret and Pod, their names, labels and annotations;
- :mod:`.podfacts` -- what a pod's state means (pending, running, failed: why);
- :mod:`.launchvars` -- Enterprise Gateway's ``KERNEL_*`` launch variables, laid
  over the kernelspec's checked pod settings (:mod:`jkctl.kube.podconfig`);
- :mod:`.lease` -- renewing the pods' leases;
- :mod:`.settings` -- :class:`~.settings.KubeBackendSettings`.

Nothing is re-exported, so that importing the settings stays cheap.
"""
