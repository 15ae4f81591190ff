"""Build hooks: the KFD ABI (cffi API mode, against the system's <linux/kfd_ioctl.h>) and the
syscall module LinuxPort uses."""

from setuptools import Extension, find_packages, setup

setup(
    # The conformance suite lives at the top of the repository and installs as
    # pytest_amdgpu.conformance (package-dir mapping in pyproject.toml).
    packages=[*find_packages(include=["pytest_amdgpu", "pytest_amdgpu.*"]),
              "pytest_amdgpu.conformance"],
    cffi_modules=["pytest_amdgpu/kfd/_abi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "pytest_amdgpu.kfd._syscall",
            sources=["pytest_amdgpu/kfd/_syscall.c"],
            extra_compile_args=["-O2"],
        )
    ],
)
