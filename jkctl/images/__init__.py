"""Kernel images: build contexts from `images/`, builders, kernelspec registration.

- :mod:`~jkctl.images.envfile`: read and validate environment.yml and explicit specs;
- :mod:`~jkctl.images.export`: export a local conda/micromamba environment;
- :mod:`~jkctl.images.context`: write a build context from the `images/conda` template;
- :mod:`~jkctl.images.kernelspec`: the image's kernelspec, and registering it;
- :mod:`~jkctl.images.builders`: the builder interface and choosing a builder;
- :mod:`~jkctl.images.local`: docker, podman and buildah as subprocesses;
- :mod:`~jkctl.images.buildlog`: following builder output, diagnosing failures.

Nothing is imported here, so importing one module does not import the rest.
"""
