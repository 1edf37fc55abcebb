## tests/kvm: build rules (see HACKING.md)
