"""The JSON report (schema_version 1) as frozen, typed models, and its JSON Schema.

`Report.model_validate(data)` reads what `l2sim run --json` writes; `report.to_json()`
writes it back byte for byte (same keys, same values, same digest). Every model allows
fields it does not declare and keeps them, so a report from a newer l2sim that adds
fields still reads, and round-trips unchanged. Fields a report may leave out have a
default and are left out again on the way back.

Amounts are integers in the token's smallest unit (wei); roots, hashes and addresses
are 0x-hex strings; validators are named by their 0-based index. Fields the report
contract promises are required; the rest are typed but optional, so that the report
can grow (a new kind of evidence, a new restore detail) without breaking readers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

REPORT_SCHEMA_VERSION = 1

Hex = Annotated[str, Field(pattern=r"^0x[0-9a-f]*$", description="0x-prefixed lower-case hex.")]
# A number stays the JSON type it was written as: 0 must not come back as 0.0 (the digest would change).
Number = int | float
CheckStatus = Literal["held", "failed", "not_reached", "exempt"]
T = TypeVar("T")
Items = Annotated[tuple[T, ...], Field(strict=False)]  # a JSON array; kept as a tuple, written back as an array


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class ByzantineEntry(_Section):
    """A validator that did not follow the protocol."""

    index: int
    behaviour: str


class ValidatorsSection(_Section):
    """The validator set."""

    count: int
    total_power: int
    byzantine: Items[ByzantineEntry]


class ChainSection(_Section):
    """The final chain of the furthest honest validator."""

    final_height: int
    final_state_root: Hex
    fork_id: int


class IncidentSection(_Section):
    """The glitch and how far it got before the halt."""

    first_bad_height: int | None
    detected_height: int | None
    halt_height: int | None
    liquidations: int = Field(description="Liquidations before the restore (a count).")
    liquidated_accounts: Items[Hex]
    market: str | None = None


class SignedMessage(_Section):
    """A signed proposal or vote, as it was sent."""

    type: str
    fork_id: int
    height: int
    round: int
    block_hash: Hex | None
    validator: int
    signature: Hex


class Certificate(_Section):
    """The rollback certificate: the plan and the 2/3+ of power that signed it."""

    plan_hash: Hex
    signers: Items[int]
    power: int
    fork_id: int | None = None
    height: int | None = None
    round: int | None = None
    votes: Items[SignedMessage] = ()


class RejectedPlan(_Section):
    """A restore plan honest validators refused to sign."""

    plan_hash: Hex
    proposer: int | None = None
    reason: str | None = None
    rejected_by: Items[int] = ()


class RestoreSection(_Section):
    """What the certificate says to restore, and what each validator restored."""

    mode: str
    target_height: int
    snapshot_state_root: Hex
    expected_state_root: Hex
    certificate: Certificate
    restored_roots: dict[str, Hex] = Field(description="Validator index (as a string) -> its restored root.")
    old_fork_id: int | None = None
    new_fork_id: int | None = None
    halt_height: int | None = None
    surgery_accounts: Items[Hex] = ()
    replayed_transactions: Items[Hex] = ()
    restore_errors: dict[str, str] = Field(default_factory=dict)
    rejected_plans: Items[RejectedPlan] = ()


class Irreversible(_Section):
    """A withdrawal already final on L1 inside the rolled-back window."""

    account: Hex | None = None
    amount: int | None = None
    withdrawal_id: int | None = None
    made_at_height: int | None = None
    final_at_height: int | None = None


class ReconciliationSection(_Section):
    """What the rollback could not undo."""

    irreversible: Items[Irreversible]
    total: int
    policy: str | None = None


class CompensationEntry(_Section):
    """One refund paid in the first block after the restart."""

    account: Hex
    amount: int
    reason: str


class CompensationSection(_Section):
    """Refunds from the vault."""

    accounts: int
    total: int
    entries: Items[CompensationEntry]


class Evidence(_Section):
    """What convicts a validator: two signed messages, or a signed message and what it contradicts."""

    validator: int
    kind: str | None = None
    messages: Items[SignedMessage] = ()


class ForensicsSection(_Section):
    """Validators convicted by their own signatures."""

    culprits: Items[int]
    evidence: Items[Evidence]


class Check(_Section):
    """One property of the run: whether it held, and why."""

    ok: bool = Field(description="True for held and exempt.")
    detail: str
    status: CheckStatus | None = Field(None, description="held, failed, not_reached or exempt.")

    @model_validator(mode="after")
    def _check_ok_matches_status(self) -> "Check":
        if self.status is not None and self.ok != (self.status in ("held", "exempt")):
            raise ValueError(f"ok = {self.ok} contradicts status {self.status!r}")
        return self


class Metrics(_Section):
    """What the run cost; `wall_s` is the only field left out of the digest."""

    blocks: int
    txs: int
    messages: int
    virtual_s: Number
    wall_s: Number
    deliveries: int | None = None


class TimelineEntry(_Section):
    """One moment of the run, in virtual seconds."""

    event: str
    time_s: Number
    height: int | None
    detail: str


class OracleSection(_Section):
    """What happened while feeds still posted pre-halt prices after the restart."""

    stale_after_restart_blocks: int
    stale_heights: Annotated[tuple[int, int], Field(strict=False)] | None
    liquidations_on_stale_prices: int
    trades_on_stale_prices: int


class Report(_Section):
    """The report of one run: `l2sim run --json` as a typed, frozen value."""

    schema_version: Literal[1]
    scenario: str
    seed: int
    digest: Hex = Field(description="sha256 of the canonical report without digest and metrics.wall_s.")
    validators: ValidatorsSection
    chain: ChainSection
    incident: IncidentSection
    restore: RestoreSection | None
    reconciliation: ReconciliationSection
    compensation: CompensationSection
    forensics: ForensicsSection
    checks: dict[str, Check]
    metrics: Metrics
    description: str | None = None
    oracle: OracleSection | None = None
    timeline: Items[TimelineEntry] = ()
    reproduce: str | None = Field(None, description="The command that replays a failed run.")

    @property
    def ok(self) -> bool:
        """True when no check failed or was not reached (what makes `l2sim run` exit 0)."""
        return all(check.ok for check in self.checks.values())

    @property
    def failed_checks(self) -> tuple[str, ...]:
        """Names of the checks that are not ok, in report order."""
        return tuple(name for name, check in self.checks.items() if not check.ok)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data, exactly the keys and values it was read from."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as `l2sim run --json` writes it (keys sorted, a newline at the end)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True) + "\n"


def report_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the report, as `l2sim schema --report` prints it."""
    schema = Report.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
