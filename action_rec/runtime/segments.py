"""Windows -> "what happened when": runs of equal labels, and the smoothed segment timeline.

Every window is decided once, by `labels.ActionRule` in the recognizer (no-action rule, threshold,
hysteresis); both kinds of segment are made of those decisions, the labels of the per-window log.

`label_runs` merges consecutive windows of the per-window log that have the same label, as they are:
the deployed script's segments and the demo's text timeline.

The timeline (`TimelineBuilder`) turns the windows' labels into segments `{"start_s", "end_s",
"label", "score"}`. Each window stands for the time around the centre of the frames its averaged
scores saw, one stride wide. A minimum segment length keeps the segments from flickering: a run of
windows shorter than `min_segment_s` (an action or a gap) does not change the state; it joins the
segment before it. A new state starts where its run started, so the boundaries stay where the change
happened.

The builder works on a stream: it keeps only the open runs, and hands out each segment as it closes.
Time where no action is recognized belongs to no segment. A gap in the input (a dropped stream,
flagged by the source, or a hole of more than `MAX_BRIDGE` strides) ends the open segment; a smaller
hole (stale windows a slow CPU skipped) is bridged by the window after it. At the start and the end of
the input (and around a gap) the timeline reaches as far as the first and last windows saw, not just
their stride's share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from action_rec.runtime.labels import ActionRule

__all__ = ["label_runs", "TimelineBuilder"]

MAX_BRIDGE = 10  # strides of missing windows the timeline bridges without ending the segment


def label_runs(entries: Iterable[dict[str, Any]], key: str = "label") -> list[dict[str, Any]]:
    """Consecutive windows of the per-window log with the same `key` ("label": the averaged decision,
    or "window_label") merged: `[{"label", "first_frame", "last_frame", "start_s", "end_s", "windows",
    "score"}]`, frames and times those of the windows' ends, score the mean of theirs."""
    runs: list[dict[str, Any]] = []
    for e in entries:
        score = e["score"] if key == "label" else e["window_score"]
        if runs and runs[-1]["label"] == e[key]:
            run = runs[-1]
            run.update(last_frame=e["frame"], end_s=e["time_s"], windows=run["windows"] + 1)
            run["score"] += score
        else:
            runs.append(
                {
                    "label": e[key],
                    "first_frame": e["frame"],
                    "last_frame": e["frame"],
                    "start_s": e["time_s"],
                    "end_s": e["time_s"],
                    "windows": 1,
                    "score": score,
                }
            )
    for run in runs:
        run["score"] = round(run["score"] / run["windows"], 4)
    return runs


@dataclass
class _Run:
    label: int | None
    start: float
    end: float
    score_sum: float = 0.0
    windows: int = 0

    def add(self, end: float, score: float) -> None:
        self.end = end
        self.score_sum += score
        self.windows += 1


class TimelineBuilder:
    """Feed `add(start_s, end_s, label, score)` per window in time order; `finish()` at the end.

    `segments` holds every closed action segment; `add` and `finish` also return the ones they closed.
    `rule` names the labels (the rule that decided them).
    """

    def __init__(self, rule: ActionRule, min_segment_s: float = 0.5) -> None:
        if min_segment_s < 0:
            raise ValueError(f"bad smoothing: min_segment_s={min_segment_s}")
        self.rule, self.min_segment_s = rule, float(min_segment_s)
        self.segments: list[dict[str, Any]] = []
        self._state: _Run | None = None  # the confirmed run, still open
        self._pending: list[_Run] = []  # runs after it, shorter than min_segment_s so far
        self._reach_end: float | None = None  # the end of the frames the last window saw

    def add(
        self,
        start_s: float,
        end_s: float,
        label: int | None,
        score: float = 0.0,
        reach: tuple[float, float] | None = None,
        after_gap: bool = False,
    ) -> list[dict[str, Any]]:
        """One window decided `label` (a class index, None: no action) with probability `score`,
        standing for [start_s, end_s), that saw the frames of `reach` (start of the first, end of the
        last); `after_gap`: the first window after the source dropped. Returns the segments this
        closed."""
        closed: list[dict[str, Any]] = []
        last = self._pending[-1] if self._pending else self._state
        if last is not None:
            if after_gap or start_s > last.end + MAX_BRIDGE * (end_s - start_s):
                closed = self.finish()
                last = None
            else:  # the first windows' cells overlap a little; skipped windows leave a hole to bridge
                start_s = last.end
        if last is None and reach is not None:  # the first window after the start or a gap
            start_s = min(start_s, reach[0])
        self._reach_end = reach[1] if reach is not None else None
        if end_s <= start_s:
            return closed
        score = float(score) if label is not None else 0.0
        if last is not None and last.label == label:
            last.add(end_s, score)
        else:
            run = _Run(label, start_s, start_s)
            run.add(end_s, score)
            self._pending.append(run)
        run = self._pending[-1] if self._pending else None
        if run is not None and run.end - run.start >= self.min_segment_s:
            closed += self._confirm(run)
        return closed

    def current(self) -> dict[str, Any] | None:
        """The open action segment, once it has lasted `min_segment_s` (None: no action, or nothing
        confirmed yet): `{"start_s", "label", "score"}`, what a "start" event says."""
        run = self._state
        if run is None or run.label is None or run.windows == 0:
            return None
        return {
            "start_s": round(run.start, 3),
            "label": self.rule.name(run.label),
            "score": round(run.score_sum / run.windows, 4),
        }

    def _confirm(self, run: _Run) -> list[dict[str, Any]]:
        """`run` (the last pending one) is long enough: the short runs before it join the state."""
        self._pending.pop()
        if self._state is None:
            if self._pending:
                run.start = self._pending[0].start
            self._pending, self._state = [], run
            return []
        self._pending = []
        if self._state.label == run.label:
            self._state.end, self._state.score_sum = run.end, self._state.score_sum + run.score_sum
            self._state.windows += run.windows
            return []
        self._state.end = run.start
        closed = self._close(self._state)
        self._state = run
        return closed

    def _close(self, run: _Run) -> list[dict[str, Any]]:
        if run.label is None or run.windows == 0:
            return []
        segment = {
            "start_s": round(run.start, 3),
            "end_s": round(run.end, 3),
            "label": self.rule.name(run.label),
            "score": round(run.score_sum / run.windows, 4),
        }
        self.segments.append(segment)
        return [segment]

    def finish(self) -> list[dict[str, Any]]:
        """Close the open segment (at the end of the input, or at a gap); the short runs at the end join
        it, or, when nothing lasted `min_segment_s`, the longest of them stands for all."""
        if self._state is None and self._pending:
            longest = max(self._pending, key=lambda r: r.end - r.start)
            longest.start, longest.end = self._pending[0].start, self._pending[-1].end
            self._state, self._pending = longest, []
        closed: list[dict[str, Any]] = []
        if self._state is not None:
            if self._pending:
                self._state.end = self._pending[-1].end
            if self._reach_end is not None:
                self._state.end = max(self._state.end, self._reach_end)
            closed = self._close(self._state)
        self._state, self._pending, self._reach_end = None, [], None
        return closed
