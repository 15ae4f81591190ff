"""Subcommands of ``python -m pytest_amdgpu``: one module per command, each with
``main(argv: list[str]) -> int``."""
