## plugins/esx: build rules (see HACKING.md)
