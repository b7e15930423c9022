"""The pure state-machine core: definitions, guards, instances and transition rules."""
