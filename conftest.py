"""Repository-level pytest configuration: only what the project's own tests need.

The amdgpu plugin itself is registered by its ``pytest11`` entry point, never here.
"""

pytest_plugins = ["pytester"]
