"""`l2sim votes` and `l2sim diff` on a saved run: the votes carry the signatures the
certificate holds, and the diff compares the discarded fork with the restarted one."""

import json

from click.testing import CliRunner

from scenarios.cli import main
from scenarios.saved_run import format_diff


def cli(*args, env=None):
    """`l2sim ARGS` in this process (the subprocess `l2sim` pays the imports each time)."""
    return CliRunner().invoke(main, list(args), env=env)


def test_votes_carry_the_certificates_signatures(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    cert = report["restore"]["certificate"]
    result = cli("votes", str(saved / "data"), "--height", str(cert["height"]), "--fork", str(cert["fork_id"]),
                 "--json")
    assert result.exit_code == 0, result.stderr
    votes = json.loads(result.stdout)
    signed = {(v["validator"], v["step"], v["value"], v["signature"]) for v in votes}
    for vote in cert["votes"]:
        assert (vote["validator"], "precommit", vote["block_hash"], vote["signature"]) in signed
    assert {v["step"] for v in votes} == {"proposal", "prevote", "precommit"}
    plan = json.loads(cli("votes", str(saved / "data"), "--plan", "--fork", str(report["restore"]["new_fork_id"]),
                          "--json").stdout)
    assert plan == votes  # the plan vote asked for by the fork it starts, not by its internal encoding
    assert {v["vote"] for v in votes} == {f"plan vote, fork {report['restore']['new_fork_id']}"}


def test_votes_read_as_plan_vote_and_wrap_to_the_terminal(saved):
    text = cli("votes", str(saved / "data"), "--plan", env={"COLUMNS": "60"}).stdout
    lines = text.splitlines()
    assert lines[0] == "plan vote, fork 1:" and "4294967297" not in text and "height 0" not in text
    assert all(len(line) <= 60 for line in lines), max(lines, key=len)
    assert any("precommit" in line for line in lines)
    block = cli("votes", str(saved / "data"), "--height", "3").stdout
    assert block.splitlines()[0] == "fork 0, height 3:"


def test_a_height_with_no_votes_is_one_line_and_exit_2(saved):
    result = cli("votes", str(saved / "data"), "--height", "100000")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no signed proposal or vote at height 100000" in result.stderr and "--plan" in result.stderr
    neither = cli("votes", str(saved / "data"))
    assert neither.exit_code == 2 and "--height H or --plan" in neither.stderr


def test_diff_of_two_forks_at_one_height_names_and_decodes(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    halt = report["restore"]["halt_height"]
    diff = json.loads(cli("diff", str(saved / "data"), "--height", str(halt), "--fork-a", "0", "--fork-b", "1",
                            "--json").stdout)
    assert (diff["from"]["fork"], diff["to"]["fork"]) == (0, 1) and diff["from"]["height"] == diff["to"]["height"]
    names = {a["name"] for a in diff["accounts"]}
    assert "perps exchange (contract)" in names and "oracle (contract)" in names
    exchange = diff["exchange"]
    assert exchange["trading_mode"] == ["open", "cancel-only"]  # fork 1 at the halt height is reopening
    assert exchange["markets"]["BTC-USD"]["price"][0] == 0  # the glitch, rolled back on fork 1
    restored = {a["address"] for a in exchange["accounts"] if a.get("collateral", [1, 0])[0] < a["collateral"][1]}
    assert restored & set(report["incident"]["liquidated_accounts"])  # who the rollback gave back to
    for entry in exchange["accounts"]:  # only what changed is listed
        assert entry.get("collateral", [0, 1])[0] != entry.get("collateral", [0, 1])[1]
        assert all(p["size"][0] != p["size"][1] or p["entry_price"][0] != p["entry_price"][1]
                   for p in entry.get("positions", {}).values())
    text = "\n".join(format_diff(diff))  # what the command prints without --json (one diff: they cost seconds)
    assert "trading mode open -> cancel-only" in text and "BTC-USD: price $0.00 -> $" in text
    assert "collateral $" in text and " wei" not in text and "slot " not in text
    for account in diff["accounts"]:  # unchanged balances are not printed
        if account["balance"][0] == account["balance"][1]:
            assert f"balance ${account['balance'][0] / 10**18:,.2f} -> ${account['balance'][1] / 10**18:,.2f}" \
                not in text
    raw = "\n".join(format_diff(diff, wei=True, slots=True))
    assert " wei -> " in raw and "slot perps exchange (contract)[" in raw
    same = cli("diff", str(saved / "data"), "--height", str(halt), "--fork-a", "1", "--fork-b", "1")
    assert same.exit_code == 0 and "0 accounts and 0 storage slots differ" in same.stdout
    both = cli("diff", str(saved / "data"), "--height", "3", "--from", "3", "--to", "4")
    assert both.exit_code == 2 and "--height is both sides" in both.stderr


def test_diff_compares_forks_and_is_empty_for_one_root(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    target, halt = report["restore"]["target_height"], report["restore"]["halt_height"]
    same = json.loads(cli("diff", str(saved / "data"), "--from", str(target), "--to", str(target), "--json").stdout)
    assert same["accounts"] == [] and same["slots"] == []
    old = json.loads(cli("diff", str(saved / "data"), "--from", str(target), "--to", str(halt), "--fork", "0",
                           "--json").stdout)
    new = json.loads(cli("diff", str(saved / "data"), "--from", str(target), "--to", str(halt), "--json").stdout)
    assert old["to"]["fork"] == 0 and new["to"]["fork"] == report["restore"]["new_fork_id"]
    assert old["to"]["state_root"] != new["to"]["state_root"]
    assert old["accounts"] and new["accounts"] and old["slots"] != new["slots"]


def test_a_height_nobody_committed_is_one_line_and_exit_2(saved):
    result = cli("diff", str(saved / "data"), "--from", "1", "--to", "100000")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no block committed" in result.stderr


def test_inspect_reads_the_rolled_back_fork_and_an_account_on_the_exchange(saved):
    data = saved / "data"
    report = json.loads((data / "report.json").read_text())
    halt = report["restore"]["halt_height"]
    events = [json.loads(line) for line in (saved / "events.jsonl").read_text().splitlines()]
    committed = {e["height"]: e["state_root"] for e in events if e["kind"] == "commit" and e["fork"] == 0}
    old = json.loads(cli("inspect", str(data), "--height", str(halt), "--fork", "0", "--json").stdout)
    assert old["fork_id"] == 0 and old["state_root"] == committed[halt]  # a height the rollback discarded
    new = json.loads(cli("inspect", str(data), "--height", str(halt), "--json").stdout)
    assert new["fork_id"] == 1 and new["state_root"] != old["state_root"]
    account = report["incident"]["liquidated_accounts"][0]
    target = report["restore"]["target_height"]
    before = json.loads(cli("inspect", str(data), "--height", str(target), "--fork", "0", "--account", account,
                              "--json").stdout)
    assert before["positions"] and before["collateral"] > 0 and isinstance(before["equity"], int)
    assert set(before) >= {"margin_requirement", "free_collateral", "liquidatable", "balance", "nonce"}
    missing = cli("inspect", str(data), "--height", "1", "--fork", "7")
    assert missing.exit_code == 2 and "fork 7" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
