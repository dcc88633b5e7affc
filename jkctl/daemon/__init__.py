"""The local daemon: the Jupyter kernel gateway API served on 127.0.0.1."""
