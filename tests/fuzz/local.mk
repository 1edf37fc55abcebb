## tests/fuzz: build rules (see HACKING.md)
