## SDK QMP client (json-c). Owned by the KVM work; see HACKING.md.
