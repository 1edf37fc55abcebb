## tests/hyperv-sim: build rules (see HACKING.md)
