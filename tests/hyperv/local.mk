## tests/hyperv: build rules (see HACKING.md)
