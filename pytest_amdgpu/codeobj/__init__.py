"""HSA code objects: ELF, metadata, kernel descriptors, kernarg layout."""
