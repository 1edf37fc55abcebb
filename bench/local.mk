## bench: build rules (see HACKING.md)
