"""`jkctl admin`: dividing one cluster's CPUs, memory and GPUs among teams.

A team is a namespace labelled as a jkctl team, holding a ResourceQuota, a
LimitRange with kernel defaults, a Role with exactly what jkctl needs, a
RoleBinding to the team's people and a NetworkPolicy that keeps everyone
else's traffic out. The parts:

- :mod:`.spec` — :class:`~.spec.TeamSpec`, a team as options, checked;
- :mod:`.manifests` — the team's objects built from a spec, as data (what
  `jkctl admin render` prints and `create` applies), and a spec read back
  from the objects;
- :mod:`.apply` — apply semantics with minimal merge patches;
- :mod:`.teams` — create, update, list and delete, with the admin's rights
  checked first;
- :mod:`.memberconfig` — a member's kubeconfig with a service-account token.

Everything here speaks to the cluster through :mod:`jkctl.kube`; printing is
the CLI's.
"""
