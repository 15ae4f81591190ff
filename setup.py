"""Build hooks: the KFD ABI (cffi API mode, against the system's <linux/kfd_ioctl.h>) and the
syscall module LinuxPort uses."""

from setuptools import Extension, setup

setup(
    cffi_modules=["pytest_amdgpu/kfd/_abi_build.py:ffibuilder"],
    ext_modules=[
        Extension(
            "pytest_amdgpu.kfd._syscall",
            sources=["pytest_amdgpu/kfd/_syscall.c"],
            extra_compile_args=["-O2"],
        )
    ],
)
