"""Typed errors of the chain layer: bad input from a caller, carrying the offending value."""


class ChainError(Exception):
    """Raised when the chain layer is given input it cannot accept (base class)."""


class UnknownRootError(ChainError):
    """Raised when a state root is not present in the node store."""

    def __init__(self, root: bytes):
        super().__init__(f"unknown state root 0x{root.hex()}")
        self.root = root


class HeightOutOfRangeError(ChainError):
    """Raised when a height is below 0 or above the chain's head."""

    def __init__(self, height: int, head: int):
        super().__init__(f"height {height} out of range 0..{head}")
        self.height = height
        self.head = head


class InvalidTransactionError(ChainError):
    """Raised when a transaction is malformed, forged, or not valid against the state."""

    def __init__(self, tx_hash: bytes, index: int, reason: str):
        super().__init__(f"transaction #{index} 0x{tx_hash.hex()} rejected: {reason}")
        self.tx_hash = tx_hash
        self.index = index
        self.reason = reason


class InvalidBlockError(ChainError):
    """Raised when a block's header disagrees with what executing it produces."""

    def __init__(self, height: int, reason: str):
        super().__init__(f"block at height {height} invalid: {reason}")
        self.height = height
        self.reason = reason
