"""Kernel lifecycle independent of where kernels run: specs, state, relay, culling."""
