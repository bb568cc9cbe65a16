"""Progress of a chain run for the person at the terminal, and the summary at its end.

While a step works, a live line (rich) shows the resource, the step, the time it has taken so far
and, for the Spark steps, the tasks done of the job Spark is running. Off a terminal (a log file,
CI), the same facts come as plain lines: one when a step starts, one every ``heartbeat`` seconds
while it runs, one when it ends with its rows and rate. :meth:`ChainProgress.summary` is the table
``citylake run`` and the demo end with: seconds, rows and rows per second per resource and step.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from citylake.stages.chain import StepRun


def step_rows(step: str, result) -> int | None:
    """The rows a step handled, when its result says (None when it does not count rows)."""

    def get(item, name):
        return item.get(name) if isinstance(item, dict) else getattr(item, name, None)

    if step == "extract":
        return get(result, "rows")
    if step == "curate":
        return get(result, "added_records") if get(result, "status") in ("merged", "rebuilt") else 0
    if step == "conform" and isinstance(result, list):
        return sum(get(r, "received") or 0 for r in result)
    return None


def spark_tasks(spark) -> tuple[int, int] | None:
    """(tasks done, tasks) over the stages Spark is running now, or None when it runs none."""
    if spark is None:
        return None
    tracker = spark.sparkContext.statusTracker()
    done = total = 0
    for stage_id in tracker.getActiveStageIds():
        info = tracker.getStageInfo(stage_id)
        if info is not None:
            done += info.numCompletedTasks
            total += info.numTasks
    return (done, total) if total else None


@dataclass
class Finished:
    resource: str
    step: str
    seconds: float
    rows: int | None

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None


class ChainProgress:
    """Pass :meth:`started` as ``on_step`` and :meth:`finished` as ``on_done`` to ``run_resource``."""

    def __init__(self, spark=None, stream: TextIO | None = None, live: bool | None = None,
                 heartbeat: float = 30.0, interval: float = 0.5, quiet: bool = False, label: str = "resource"):
        self.spark = spark
        self.label = label  # what the first column of the summary names (a resource, a DAG)
        self.stream = stream or sys.stderr
        self.quiet = quiet  # record for the summary, show nothing while running
        # Live only when stdout is the same screen: rich routes stdout through its live line.
        self.live = not quiet and (self.stream.isatty() and sys.stdout.isatty() if live is None else live)
        self.heartbeat = heartbeat
        self.interval = interval
        self.done: list[Finished] = []
        self.began = time.monotonic()
        self._current: tuple[str, str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = None

    # ---- what the person sees -----------------------------------------------------------------
    def _now_text(self, current: tuple[str, str, float]) -> str:
        resource, step, since = current
        text = f"{resource} · {step} · {time.monotonic() - since:.0f} s"
        tasks = spark_tasks(self.spark) if step in ("conform", "check", "curate") else None
        if tasks:
            text += f" · Spark tasks {tasks[0]}/{tasks[1]}"
        return text

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self._status is not None:
            self._status.console.print(text, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def _watch(self) -> None:
        last_beat = 0.0
        while not self._stop.wait(self.interval):
            current = self._current  # read once: the chain's thread may end the step meanwhile
            if current is None:
                continue
            text = self._now_text(current)
            if self._status is not None:
                self._status.update(text)
            elif time.monotonic() - max(last_beat, current[2]) >= self.heartbeat:
                # every ``heartbeat`` seconds of one step, counted from its start
                last_beat = time.monotonic()
                self._line(f"… {text}")

    def __enter__(self) -> ChainProgress:
        if self.live:
            from rich.console import Console

            self._status = Console(file=self.stream).status("starting …")
            self._status.start()
        if self.quiet:
            return self
        self._thread = threading.Thread(target=self._watch, name="citylake-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._status is not None:
            self._status.stop()
            self._status = None

    # ---- the chain's callbacks ----------------------------------------------------------------
    def started(self, resource: str, step: str) -> None:
        self._current = (resource, step, time.monotonic())
        if not self.live and not self.quiet:
            self._line(f"{resource} · {step} …")

    def finished(self, resource: str, run: StepRun, announce: bool = True) -> None:
        """``announce``: print the step's line (False when the caller prints its own)."""
        self._current = None
        item = Finished(resource, run.step, run.seconds, step_rows(run.step, run.result))
        self.done.append(item)
        if not announce:
            return
        text = f"{resource} · {run.step} done in {run.seconds:.1f} s"
        if item.rows is not None:
            text += f" · {item.rows:,} rows"
            if item.rate:
                text += f" · {item.rate:,.0f} rows/s"
        self._line(text)

    # ---- the end --------------------------------------------------------------------------------
    def summary(self) -> str:
        """Seconds, rows and rows/s per resource and step, with the totals."""
        head = f"{self.label:32} {'step':8} {'seconds':>9} {'rows':>12} {'rows/s':>10}"
        out = [head, "-" * len(head)]
        for item in self.done:
            rows = f"{item.rows:,}" if item.rows is not None else ""
            rate = f"{item.rate:,.0f}" if item.rate else ""
            out.append(f"{item.resource:32} {item.step:8} {item.seconds:9.1f} {rows:>12} {rate:>10}")
        steps = sum(i.seconds for i in self.done)
        resources = len({i.resource for i in self.done})
        out.append("-" * len(head))
        out.append(f"{resources} {self.label}(s), {len(self.done)} step(s): {steps:.1f} s in steps, "
                   f"{time.monotonic() - self.began:.1f} s in all")
        return "\n".join(out)
