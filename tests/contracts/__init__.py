"""Unit tests of the exchange contracts (oracle, perps, bridge) and their build glue."""
