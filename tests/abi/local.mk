## tests/abi: build rules (see HACKING.md)
