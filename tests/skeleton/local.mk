## tests/skeleton: build rules (see HACKING.md)
