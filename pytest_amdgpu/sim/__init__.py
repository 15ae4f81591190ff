"""The simulated GPU: a KFD driver model and the hardware behind it, reached only through SimPort."""
