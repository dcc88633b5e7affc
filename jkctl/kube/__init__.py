"""Everything that speaks to the Kubernetes API: login, requests, watches, port-forward.

- :mod:`.login` — kubeconfigs found as kubectl finds them, logged in through
  the `kubernetes` package's loader into :class:`~.login.Credentials`;
- :mod:`.client` — :class:`~.client.KubeClient`, one aiohttp session: JSON
  verbs, watches, log streams, websockets, re-login on 401;
- :mod:`.status` and :mod:`.connection` — the one place where `Status`
  answers and network failures become :mod:`jkctl.errors` types;
- :mod:`.access` — SelfSubjectAccessReview checks, said in one sentence;
- :mod:`.portforward` and :mod:`.tunnel` — `v4.channel.k8s.io` port-forward,
  and a pod's ports as local Unix sockets for ZeroMQ;
- :mod:`.podwatch` — pods followed by list+watch, as typed states and events;
  :mod:`.objectwatch` — one object (a DaemonSet, a Job) followed the same way;
- :mod:`.podconfig` — a kernelspec's ``metadata.jkctl``, typed and checked
  (the rules per field in :mod:`.podfields`, on :mod:`.fieldcheck`,
  :mod:`.names` and :mod:`.quantity`);
- :mod:`.podtemplate` — kernel pods rendered from Jinja2 templates as data;
- :mod:`.prepull` — the image pre-puller DaemonSet;
- :mod:`.buildjob` — image builds as Kaniko Jobs;
- :mod:`.quota` — a team's quota usage, and quota refusals in its words
  (amounts written canonically and said for people by :mod:`.amounts`);
- :mod:`.tlsbuffers` — TLS read buffers sized for many quiet connections.

Nothing is re-exported here, so that importing one part (the CLI's `--help`)
does not import aiohttp and the `kubernetes` package with it.
"""
