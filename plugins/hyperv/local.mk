## plugins/hyperv: build rules (see HACKING.md)
