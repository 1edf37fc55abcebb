## tests/esx: build rules (see HACKING.md)
