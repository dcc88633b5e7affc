"""Kernel images: build contexts from `images/`, builders, kernelspec registration."""
