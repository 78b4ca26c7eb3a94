"""Example task modules shipped with taskctl. Each is listed in config.toml."""
