## host: build rules (see HACKING.md)
