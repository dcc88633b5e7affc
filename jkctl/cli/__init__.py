"""The `jkctl` command line: parse, call the library or the daemon, print."""
