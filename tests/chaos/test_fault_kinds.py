"""Each fault kind of `python -m chaos` on its own, in a short run on a node of the run's own.

Every invariant must hold, and the fault must have been made: its line in the report says what
it saw (an alarm active, connections lost, dead letters parked and unparked...), and the dead
letters it made are all recorded. The older kinds (kills, restarts, database faults, copies,
poison) are off, so a failure names the kind.
"""

import json
import os
import re
import sys

import pytest
from django.db import connection

from chaos.processes import ARTIFACTS, ROOT, run_harness

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]

QUIET = [
    "--orders", "40", "--rate", "2", "--workers", "1",
    "--worker-kills", "0", "--broker-restarts", "0", "--db-faults", "0", "--poison", "0",
    "--duplicates", "0", "--late", "0", "--gateway-failure-rate", "0",
]  # fmt: skip

# fault kind: (its options, what the report must say it did)
KINDS = {
    "alarm": (
        ["--alarms", "2", "--alarm-seconds", "6"],
        [r"memory alarm on \S+ for 6 s \(seen active halfway\)",
         r"disk alarm on \S+ for 6 s \(seen active halfway\)"],
    ),
    "stale_dead_letter": (
        ["--stale-dead-letters", "2"],
        [r"a copy of fraud's message \S+ dead-lettered, order moved on"] * 2,
    ),
    "dead_letter_fault": (
        ["--dead-letter-faults", "3", "--dead-letter-down-seconds", "12"],
        [r"dead-letter consumer SIGKILLed, 12 s down while dead letters arrived, restarted",
         r"database cut for 12 s; then `deadletters unpark`: moved [1-9]\d* parked",
         r"acks dropped: 3 of 3 recorded unacked, consumer SIGKILLed and restarted"],
    ),
    "channel_close_loop": (
        ["--channel-close-loops", "1", "--channel-closes", "5"],
        [r"closed 5 times, 3.5 s apart; the workers logged [5-9]\d* lost connection"],
    ),
    "replay_during_outage": (
        ["--replays-during-outage", "1"],
        [r"2 waiting billing message\(s\) dead-lettered, 2 NEW replayed from the admin and the "
         r"CLI at once during RabbitMQ stop_app \(admin HTTP 200, CLI exit 0\)"],
    ),
    "same_name_restart": (
        ["--same-name-restarts", "2", "--workers", "2"],
        [r"SIGKILL worker worker\d \(pid \d+\), its connection held half-open; restarted "
         r"under the same name; answered ping after \d+ s"] * 2,
    ),
    "relay_fault": (
        ["--relay-faults", "2", "--relay-down-seconds", "6"],
        [r"relay SIGKILLed, 6 s down with [1-9]\d* unpublished outbox rows waiting; restarted, "
         r"the backlog published in \d+\.\d s",
         r"relay paused \(SIGSTOP\) for 6 s with [1-9]\d* unpublished outbox rows waiting; "
         r"resumed, the backlog published in \d+\.\d s"],
    ),
    "receiver_fault": (  # paced so that orders still flow during the fourth
        ["--receiver-faults", "4", "--receiver-fault-seconds", "4",
         "--orders", "150", "--rate", "3"],
        [r"webhook receiver down \(port closed\) for 4 s: [1-9]\d* deliveries pending; back to "
         r"OK, they ended in \d+\.\d s",
         r"webhook receiver answering after 3 s \(the sender waits 1 s\) for 4 s: [1-9]\d* "
         r"request\(s\) not taken, \d+ deliveries pending; back to OK, they ended in \d+\.\d s",
         r"webhook receiver answering 500 for 4 s: [1-9]\d* request\(s\) not taken, \d+ "
         r"deliveries pending; back to OK, they ended in \d+\.\d s",
         r"SIGKILL worker webhooks \(pid \d+\) and all its children; restarted, [1-9]\d* "
         r"request\(s\) out and [1-9]\d* deliveries pending; they ended in \d+\.\d s"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_fault_kind_is_made_and_every_invariant_holds(kind):
    options, evidence = KINDS[kind]
    report_path = ARTIFACTS / "chaos" / f"fault-{kind}.json"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }

    result = run_harness(
        [sys.executable, "-m", "chaos", *QUIET, *options, "--seed", "21",
         "--report", str(report_path)],
        cwd=ROOT,
        env=env,
        timeout=280,
    )  # fmt: skip

    print(result.stdout)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    said = "\n".join(fault["what"] for fault in report["faults"])
    for pattern in evidence:
        assert re.search(pattern, said), f"no {pattern!r} in:\n{said}"
        said = re.sub(pattern, "", said, count=1)  # each line of evidence once
    assert "failed" not in said
    made = [row for row in report["fault_kinds"] if row["dead_letters_expected"]]
    assert all(row["dead_letters_recorded"] == row["dead_letters_expected"] for row in made)
