"""The OpenCL C corpus: kernels (*.cl), prebuilt code objects, and `cases` (recipes and numpy
references)."""
