"""throttle: what API throttling costs, POST /api/orders/ with the throttle on and off.

The same load against the same code, the only difference API_THROTTLE_USER_RATE. The rate
is high enough that no request is refused, so every request pays the full cost of being
counted. In a 10 s phase each client sends several hundred requests, near the default
limit of 600 a minute (which mattered for DRF's own throttle, whose cost grows with it).
The phases alternate (off, on, off, on) so drift on a shared machine falls on both sides.
Nothing consumes the orders: the outbox keeps them (OUTBOX_PUBLISH_ON_COMMIT=0), so only
the web process's work is measured.
"""

import statistics

from .common import print_table, process_env, setup_django, write_report
from .http_load import LoadResult, closed_loop
from .web import BODY, WARMUP_S, client_tokens, load_row, load_succeeded, running_system

RATES = {"off": "off", "on": "1000000/minute"}


def run(args) -> int:
    setup_django("orderflow_bench_throttle")
    results: dict[str, list[LoadResult]] = {"off": [], "on": []}
    for round_number in range(args.rounds):
        for mode, rate in RATES.items():
            name = f"throttle-{mode}-{round_number}"
            # New buyers each phase: every phase starts with empty histories.
            tokens = client_tokens(name, args.clients)
            env = process_env(API_THROTTLE_USER_RATE=rate, OUTBOX_PUBLISH_ON_COMMIT="0")
            with running_system(name, env, consumers=False) as system:
                results[mode].append(
                    closed_loop(
                        system.base_url + "/api/orders/",
                        tokens=tokens,
                        body=BODY,
                        seconds=args.seconds,
                        warmup=WARMUP_S,
                        desc=name,
                    )
                )
    mean = {
        mode: statistics.mean(r.requests_per_s for r in phase) for mode, phase in results.items()
    }
    ratio = round(mean["on"] / mean["off"], 3)
    figures = {
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "rates": RATES,
        "phases": {mode: [r.figures() for r in phase] for mode, phase in results.items()},
        "mean_requests_per_s": mean,
        "ratio_on_to_off": ratio,
        "note": "requests/s with the throttle on, over the same with it off (alternating phases)",
    }
    rows = [
        load_row(f"{mode} (round {n + 1})", results[mode][n])
        for n in range(args.rounds)
        for mode in RATES
    ]
    rows.append(["ratio on/off (req/s)", "", ratio, "", "", "", ""])
    print_table(
        f"throttle: {args.clients} clients, {args.seconds:g} s a phase, {args.rounds} rounds",
        ["", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
        rows,
    )
    write_report("throttle", figures, lambda path: None)  # two numbers: no chart
    return 0 if load_succeeded(*results["off"], *results["on"]) else 1
