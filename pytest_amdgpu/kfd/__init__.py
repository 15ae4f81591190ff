"""Typed, direct-ioctl access to the KFD driver (/dev/kfd) through a Port."""
