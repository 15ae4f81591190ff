"""Conformance kernels: sources and prebuilt code objects per target."""
