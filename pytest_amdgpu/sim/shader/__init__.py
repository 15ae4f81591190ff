"""The simulated shader core: instruction decoding and wave execution."""
