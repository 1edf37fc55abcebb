## tests/unit: build rules (see HACKING.md)
