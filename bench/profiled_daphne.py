"""daphne with pyinstrument armed by signals, for bench/profile.py.

SIGUSR1 starts sampling the main thread (the event loop), SIGUSR2 stops it
and writes text and HTML reports and the raw session to
$BENCH_PROFILE_OUT.{txt,html,pyisession}, so the
profile covers the measured load only, not start-up or warm-up.
"""

import os
import signal
import sys

from daphne.cli import CommandLineInterface
from pyinstrument import Profiler

SAMPLE_INTERVAL_S = 0.001


def install(out: str) -> None:
    profiler = Profiler(interval=SAMPLE_INTERVAL_S, async_mode="disabled")

    def start(signum, frame):
        profiler.start()

    def stop(signum, frame):
        profiler.stop()
        with open(f"{out}.txt", "w") as text:
            text.write(profiler.output_text(unicode=True, show_all=False))
        profiler.write_html(f"{out}.html")
        profiler.last_session.save(f"{out}.pyisession")  # re-render at will

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


if __name__ == "__main__":
    install(os.environ["BENCH_PROFILE_OUT"])
    CommandLineInterface().run(sys.argv[1:])
