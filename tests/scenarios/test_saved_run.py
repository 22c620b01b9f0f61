"""`l2sim votes` and `l2sim diff` on a saved run: the votes carry the signatures the
certificate holds, and the diff compares the discarded fork with the restarted one."""

import json

from teaching_support import l2sim


def test_votes_carry_the_certificates_signatures(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    cert = report["restore"]["certificate"]
    result = l2sim("votes", str(saved / "data"), "--height", str(cert["height"]), "--fork", str(cert["fork_id"]),
                   "--json")
    assert result.returncode == 0, result.stderr
    votes = json.loads(result.stdout)
    signed = {(v["validator"], v["step"], v["value"], v["signature"]) for v in votes}
    for vote in cert["votes"]:
        assert (vote["validator"], "precommit", vote["block_hash"], vote["signature"]) in signed
    assert {v["step"] for v in votes} == {"proposal", "prevote", "precommit"}
    text = l2sim("votes", str(saved / "data"), "--height", str(cert["height"]), "--fork", str(cert["fork_id"]))
    assert text.stdout.count("\n") == len(votes)


def test_diff_compares_forks_and_is_empty_for_one_root(saved):
    report = json.loads((saved / "data" / "report.json").read_text())
    target, halt = report["restore"]["target_height"], report["restore"]["halt_height"]
    same = json.loads(l2sim("diff", str(saved / "data"), "--from", str(target), "--to", str(target), "--json").stdout)
    assert same["accounts"] == [] and same["slots"] == []
    old = json.loads(l2sim("diff", str(saved / "data"), "--from", str(target), "--to", str(halt), "--fork", "0",
                           "--json").stdout)
    new = json.loads(l2sim("diff", str(saved / "data"), "--from", str(target), "--to", str(halt), "--json").stdout)
    assert old["to"]["fork"] == 0 and new["to"]["fork"] == report["restore"]["new_fork_id"]
    assert old["to"]["state_root"] != new["to"]["state_root"]
    assert old["accounts"] and new["accounts"] and old["slots"] != new["slots"]


def test_a_height_nobody_committed_is_one_line_and_exit_2(saved):
    result = l2sim("diff", str(saved / "data"), "--from", "1", "--to", "100000")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no block committed" in result.stderr


def test_inspect_reads_the_rolled_back_fork_and_an_account_on_the_exchange(saved):
    data = saved / "data"
    report = json.loads((data / "report.json").read_text())
    halt = report["restore"]["halt_height"]
    events = [json.loads(line) for line in (saved / "events.jsonl").read_text().splitlines()]
    committed = {e["height"]: e["state_root"] for e in events if e["kind"] == "commit" and e["fork"] == 0}
    old = json.loads(l2sim("inspect", str(data), "--height", str(halt), "--fork", "0", "--json").stdout)
    assert old["fork_id"] == 0 and old["state_root"] == committed[halt]  # a height the rollback discarded
    new = json.loads(l2sim("inspect", str(data), "--height", str(halt), "--json").stdout)
    assert new["fork_id"] == 1 and new["state_root"] != old["state_root"]
    account = report["incident"]["liquidated_accounts"][0]
    target = report["restore"]["target_height"]
    before = json.loads(l2sim("inspect", str(data), "--height", str(target), "--fork", "0", "--account", account,
                              "--json").stdout)
    assert before["positions"] and before["collateral"] > 0 and isinstance(before["equity"], int)
    assert set(before) >= {"margin_requirement", "free_collateral", "liquidatable", "balance", "nonce"}
    missing = l2sim("inspect", str(data), "--height", "1", "--fork", "7")
    assert missing.returncode == 2 and "fork 7" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
