## tests/vcsim: build rules (see HACKING.md)
