## plugins/kvm: build rules (see HACKING.md)
