"""Progress: a rich bar (loss, lr, samples/s, ETA) on a terminal, plain lines when the output is a pipe or a file."""
from __future__ import annotations

import sys
import time

from rich.console import Console


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True, desc: str = "train"):
        self.total, self.start, self.enabled, self.desc = total, start, enabled, desc
        self.console = Console(stderr=True, highlight=False, emoji=False)
        self.tty = enabled and self.console.is_terminal
        self.t0 = time.perf_counter()
        self.bar = None
        if self.tty:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
                                    TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(),
                                    TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=False)
            self.task = self.bar.add_task(desc, total=total, completed=start, loss="-", lr="-", rate="-")
            self.bar.start()

    def update(self, step: int, epoch: int, loss: float, lr: float, rate: float, log: bool) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            fields = {"rate": f"{rate:,.0f}"} if log else {}       # samples/s is measured at log steps
            self.bar.update(self.task, completed=step, description=f"{self.desc} epoch {epoch + 1}",
                            loss=f"{loss:.4f}", lr=f"{lr:.2e}", **fields)
        elif log:
            done = step - self.start
            eta = (time.perf_counter() - self.t0) / max(done, 1) * (self.total - step)
            print(f"epoch {epoch + 1} step {step}/{self.total} loss {loss:.4f} lr {lr:.2e} "
                  f"{rate:,.0f} samples/s eta {_fmt_time(eta)}", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(text, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
