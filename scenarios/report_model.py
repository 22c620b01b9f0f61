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
import os
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, model_validator

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
    kind: Literal["price", "funding-reset", "both"] | None = Field(None, description="What the glitch corrupted.")
    funding_markets: Items[str] = Field((), description="Markets whose funding index the glitch reset.")


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


class ReturnedEntry(_Section):
    """What the restore gave back to one account liquidated inside the rolled-back window."""

    account: Hex
    amount: int = Field(description="restored_equity - halted_equity, in wei.")
    restored_equity: int = Field(description="Equity after the restore, at the restart price.")
    halted_equity: int = Field(description="Equity at the halt, at the restart price.")


class ReturnedSection(_Section):
    """What the restore itself gave back (reported, never paid: the rollback did it)."""

    policy: Literal["restore-returned"]
    accounts: int
    total: int
    entries: Items[ReturnedEntry]


class ValidatorRoots(RootModel[dict[str, Hex]]):
    """Validator index (as a string) -> a root; reads like a dict (`roots["0"]`, `.items()`)."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, key: str) -> str:
        return self.root[key]

    def __iter__(self):  # type: ignore[override]  # iterate keys, as a dict does
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __contains__(self, key: object) -> bool:
        return key in self.root

    def get(self, key: str, default: str | None = None) -> str | None:
        """The root at `key`, or `default`."""
        return self.root.get(key, default)

    def keys(self):
        """Validator indices, as strings."""
        return self.root.keys()

    def values(self):
        """The roots."""
        return self.root.values()

    def items(self):
        """(validator index, root) pairs."""
        return self.root.items()


class RestoreSection(_Section):
    """What the certificate says to restore, and what each validator restored."""

    mode: str
    target_height: int
    snapshot_state_root: Hex
    expected_state_root: Hex
    certificate: Certificate
    restored_roots: ValidatorRoots = Field(description="Validator index (as a string) -> its restored root.")
    old_fork_id: int | None = None
    new_fork_id: int | None = None
    halt_height: int | None = None
    surgery_accounts: Items[Hex] = ()
    replayed_transactions: Items[Hex] = ()
    restore_errors: dict[str, str] = Field(default_factory=dict, description="Validator index -> why its restore failed.")
    rejected_plans: Items[RejectedPlan] = ()
    returned: ReturnedSection | None = None


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
    """One payment from the vault, under a named policy (`reason`)."""

    account: Hex
    amount: int = Field(description="counterfactual_equity - restored_equity, in wei (only a positive one is paid).")
    reason: str = Field(description="The policy: halt-drift or reopening-harm.")
    payer: str | None = Field(None, description="Who pays: the liquidator vault.")
    counterfactual_equity: int | None = Field(None, description="Equity the account would have had.")
    restored_equity: int | None = Field(None, description="Equity it had, valued at the same price and moment.")
    detail: str | None = Field(None, description="The policy's sentence for this account.")


class CompensationSection(_Section):
    """Refunds from the vault."""

    accounts: int
    total: int
    entries: Items[CompensationEntry]


class Evidence(_Section):
    """What convicts a validator: two messages it signed (kind `equivocation` or `amnesia`), or
    a halt view it signed against the commit certificate of the header it contradicts (kind
    `view-contradicts-certified-header`: the view's digest and signature, the root it claims
    at `height` and the certified root)."""

    validator: int
    kind: str | None = None
    messages: Items[SignedMessage] = ()
    height: int | None = None
    view_digest: Hex | None = None
    view_signature: Hex | None = None
    claimed_root: Hex | None = None
    certified_root: Hex | None = None


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


class ReopeningPhase(_Section):
    """One phase of trading after the restart, from `start_height` up to `end_height` (None: open to the end)."""

    mode: Literal["cancel-only", "post-only", "open"]
    start_height: int
    end_height: int | None


class ReopeningSection(_Section):
    """How trading reopened after the restart, and who was liquidated while it was restricted."""

    phases: Items[ReopeningPhase]
    liquidations: int
    liquidated_accounts: Items[Hex]


class RestartSection(_Section):
    """The new fork after the restart: where it starts, and who was liquidated on it."""

    fork_id: int
    start_height: int
    liquidations: int
    liquidated_accounts: Items[Hex]


class SeriesPoint(_Section):
    """What the market showed at one committed height of one fork (per market, by name)."""

    fork: int
    height: int
    onchain: dict[str, int] = Field(description="Market -> the oracle's price on chain (1e18 per USD).")
    reference: dict[str, int] = Field(description="Market -> the true price outside (1e18 per USD).")
    liquidations: int
    open_interest: dict[str, Annotated[tuple[int, int], Field(strict=False)]] = Field(
        description="Market -> [long, short] open interest (base units * 1e18).")
    vault: int


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
    reopening: ReopeningSection | None = None
    restart: RestartSection | None = None
    series: Items[SeriesPoint] = ()
    timeline: Items[TimelineEntry] = ()
    reproduce: str | None = Field(None, description="The command that replays a failed run (for a scenario given as "
                                  "a dict or a Scenario, from the file scenarios.run wrote it to).")

    _scenario_toml: str | None = PrivateAttr(None)

    def with_scenario(self, toml_text: str) -> "Report":
        """This report, knowing the resolved scenario it ran (as `scenarios.run` returns it)."""
        copy = self.model_copy()
        copy._scenario_toml = toml_text
        return copy

    def scenario_toml(self) -> str:
        """The resolved scenario this report ran, as TOML (what `l2sim show` prints); only for a
        report `scenarios.run` returned: a report read back from JSON does not hold it."""
        if self._scenario_toml is None:
            raise ValueError("this report was read from JSON, not returned by scenarios.run: it holds no scenario")
        return self._scenario_toml

    def save_scenario(self, path: str | os.PathLike[str]) -> str:
        """Write the resolved scenario to `path` as TOML; returns the `l2sim run` command that
        replays this run from it (the same digest)."""
        Path(path).write_text(self.scenario_toml(), encoding="utf-8")
        return shlex.join(["l2sim", "run", os.fspath(path), "--seed", str(self.seed)])

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
