"""How `make bench` judges an on/off target (bench/report.py).

Both sides of an on/off case run inside one run (interleaved on one server,
or back to back), so the verdict pairs each run's "on" with its own "off"
and judges the median of those ratios. A ratio of medians would pair one
run's side with another run's and can pass a target every run failed.
"""

from bench.report import per_run_ratios, ratios_cells

ON = ("authsocket", "presence/churn-memory-on")
OFF = ("authsocket", "presence/churn-memory-off")


def record(side, run: int, **result) -> dict:
    server, case = side
    return {"server": server, "case": case, "run": run, "result": result}


def churn(pairs, key="subscribes_per_s") -> list[dict]:
    """Records of runs 0, 1, …, each an (on, off) pair of `key`'s values."""
    records = []
    for run, (on, off) in enumerate(pairs):
        records.append(record(ON, run, status="ok", **{key: on}))
        records.append(record(OFF, run, status="ok", **{key: off}))
    return records


def test_each_run_is_paired_with_its_own_other_side():
    # Every run fails 0.9x; the medians (on 900, off 950) would say 0.947x.
    records = churn([(500, 600), (900, 1000), (1000, 1200)])
    ratios = per_run_ratios(records, ON, OFF, "subscribes_per_s", lower_better=False)
    assert [round(r, 3) for r in ratios] == [0.833, 0.9, 0.833]
    assert ratios_cells(ratios, 0.9) == ("0.833×", "0.83, 0.90, 0.83", "**FAIL**")


def test_a_figure_where_lower_is_better_is_turned_round():
    records = churn([(1.2, 1.0), (1.0, 1.0), (0.9, 1.0)], key="delivery_p99_ms")
    ratios = per_run_ratios(records, ON, OFF, "delivery_p99_ms", lower_better=True)
    assert [round(r, 3) for r in ratios] == [0.833, 1.0, 1.111]
    assert ratios_cells(ratios, 0.9)[2] == "**pass**"


def test_a_failed_or_missing_side_leaves_its_run_out():
    records = churn([(900, 1000), (950, 1000)])
    records[2]["result"] = {"status": "error", "error": "timeout"}  # run 1, on
    records.append(record(ON, 2, status="ok", subscribes_per_s=100))  # no off
    ratios = per_run_ratios(records, ON, OFF, "subscribes_per_s", lower_better=False)
    assert ratios == [0.9]


def test_the_verdict_is_shown_to_three_places_and_none_without_runs():
    assert ratios_cells([0.8995, 0.9, 0.91], 0.9)[::2] == ("0.900×", "**pass**")
    assert ratios_cells([0.966], 0.97) == ("0.966×", "0.97", "**FAIL**")
    assert ratios_cells([], 0.9) == ("–", "–", "n/a")
