"""Sans-I/O consensus: Tendermint engine, messages, certificates, proposer priorities, the
event loop and simulated network, the emergency-upgrade protocol, safety and liveness
checks, forensics, and hypothesis strategies for fault schedules (`strategies`, test-only:
nothing imports it)."""
