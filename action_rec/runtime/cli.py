"""The command line of the live recognizer: `tools/demo.py` and the deployed `recognize.py` are this.

    demo.py --model model.xml --input 0                                   # camera 0, on screen
    demo.py --model model.xml --input door=rtsp://cam1/s --input hall=rtsp://cam2/s --no-show \\
            --timeline out/{name}.json --events - --events-url http://127.0.0.1:8080/actions
    demo.py --model model.xml --inputs cameras.txt --show                 # one source per line

A source is a camera index, a video file or a stream URL, optionally named `NAME=SOURCE`. With
several sources, per-stream outputs (`--output`, `--json`, `--timeline`) must contain `{name}`.
Exit status: 0 done, 1 a stream stopped on an error (the others ran to their end), 2 bad input (one
line on stderr).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from action_rec.runtime.compile import HINTS, throughput_config
from action_rec.runtime.errors import UserError
from action_rec.runtime.events import EventBus, EventDelivery, HttpSink, JsonLinesSink
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.overlay import DemoError
from action_rec.runtime.runner import StreamRunner
from action_rec.runtime.sources import FrameSource, LoopingFile, ReconnectingSource, open_source
from action_rec.runtime.stream import Stream, StreamOutputs, StreamSettings

__all__ = ["build_parser", "parse_sources", "main"]

_NAMED = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mkv")


def parse_sources(inputs: list[str], inputs_file: str | None = None) -> list[tuple[str, str]]:
    """`--input` values and the lines of `--inputs FILE` -> unique (name, source) pairs. A line is a
    source, or `NAME=SOURCE`; blank lines and lines starting with # are skipped."""
    specs: list[tuple[str, str]] = []
    if inputs_file:
        path = Path(inputs_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DemoError(f"{path}: cannot read the list of inputs: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                specs.append((f"{path}:{number}", text))
    specs += [("--input", text) for text in inputs]
    if not specs:
        raise DemoError("no input: give --input (one or more) or --inputs FILE")
    named: list[tuple[str, str]] = []
    for where, text in specs:
        match = _NAMED.match(text)
        name, source = (
            (match.group(1), match.group(2)) if match and "://" not in match.group(1) else (None, text)
        )
        if name is None:
            stem = Path(source).stem if not source.isdigit() and "://" not in source else None
            name = f"cam{source}" if source.isdigit() else stem or f"stream{len(named) + 1}"
        if any(name == n for n, _ in named):
            if match:
                raise DemoError(f"{where}: the name '{name}' is used twice")
            name = f"{name}-{len(named) + 1}"
        named.append((name, source))
    return named


def _per_stream(pattern: str | None, name: str, several: bool, flag: str) -> Path | None:
    if pattern is None:
        return None
    if several and "{name}" not in pattern:
        raise DemoError(
            f"{flag} {pattern}: with several inputs it must contain {{name}} (e.g. out/{{name}}.json)"
        )
    return Path(pattern.replace("{name}", name))


def build_parser(prog: str = "demo.py", default_model: Path | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Recognize actions live in one or many cameras, video files or streams with an "
        "exported model (one process, one compiled model for all of them).",
    )
    p.add_argument(
        "--model",
        required=default_model is None,
        default=default_model,
        help="exported model.xml, its model.json beside it"
        + (" (default: beside this script)" if default_model else ""),
    )
    p.add_argument("--int8", action="store_true", help="run model_int8.xml beside --model instead")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        help="camera index (0), video file or stream URL (rtsp://...), optionally NAME=SOURCE; repeat for "
        "several streams",
    )
    p.add_argument("--inputs", help="a text file with one source per line (NAME=SOURCE or SOURCE)")
    p.add_argument("--device", default="CPU", help="OpenVINO device to run the model on (default CPU)")
    p.add_argument(
        "--threads", type=int, default=0, help="CPU inference threads in all (default 0: all cores)"
    )
    p.add_argument(
        "--precision-hint",
        default="default",
        choices=list(HINTS),
        help="OpenVINO's default settings (as users run a model: bf16 on CPUs that have it), or f32 (the "
        "precision export verified to 1e-4) or bf16",
    )
    p.add_argument(
        "--cpu-streams",
        type=int,
        default=0,
        help="OpenVINO CPU streams (inferences run in parallel); default: one for a single input, "
        "OpenVINO's throughput choice for several",
    )
    p.add_argument(
        "--requests",
        type=int,
        help="infer requests (default: OpenVINO's optimal number, at most one per input)",
    )
    p.add_argument("--stride", type=int, default=8, help="advance the window by this many frames (default 8)")
    p.add_argument(
        "--average", type=int, help="average the scores of the last N windows (default: model.json's, else 3)"
    )
    p.add_argument("--top-k", type=int, default=3, help="labels to show (default 3)")
    p.add_argument(
        "--threshold",
        type=float,
        help="top probability below which a window means no action (default: model.json's; 0: none)",
    )
    p.add_argument(
        "--min-segment",
        type=float,
        help="seconds: shorter runs (actions or gaps) do not change the timeline (default: model.json's, else 0.5)",
    )
    p.add_argument(
        "--hysteresis",
        type=float,
        help="the current action stays while its score is within this of the top one (default: model.json's, "
        "else 0.1); the overlay, the per-window log, the timeline and the events all show that one decision",
    )
    p.add_argument("--no-show", action="store_true", help="do not open a window (headless)")
    p.add_argument(
        "--output", help="write the annotated video here (.mp4, .m4v, .avi or .mkv; {name} per input)"
    )
    p.add_argument(
        "--json", help="write the per-window log here, one JSON object per window ({name} per input)"
    )
    p.add_argument(
        "--timeline",
        help='write the action segments here: [{"start_s", "end_s", "label", "score"}] ({name} per input)',
    )
    p.add_argument(
        "--events", help="write start/end events as JSON lines to this file (appended), or - for stdout"
    )
    p.add_argument("--events-url", help="POST each start/end event as JSON to this URL")
    p.add_argument(
        "--events-queue",
        type=int,
        default=1000,
        help="events waiting per destination before the oldest is dropped",
    )
    p.add_argument(
        "--reconnect-tries",
        type=int,
        help="live sources: tries to reopen after a drop (default: forever; 0: end that stream)",
    )
    p.add_argument("--max-frames", type=int, help="stop each input after this many frames")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="read files at their own frame rate and drop stale work, as for a camera",
    )
    p.add_argument(
        "--loop", action="store_true", help="play video files as cameras: at their frame rate, endlessly"
    )
    return p


def _check(args: argparse.Namespace) -> None:
    for name in ("stride", "top_k", "average", "requests"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise DemoError(f"--{name.replace('_', '-')} must be at least 1")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise DemoError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.min_segment is not None and args.min_segment < 0:
        raise DemoError(f"--min-segment must be >= 0, got {args.min_segment}")
    if args.hysteresis is not None and not 0 <= args.hysteresis < 1:
        raise DemoError(f"--hysteresis must be in [0, 1), got {args.hysteresis}")
    if args.cpu_streams < 0 or args.threads < 0 or args.events_queue < 1:
        raise DemoError("--cpu-streams and --threads must be >= 0, --events-queue >= 1")
    if args.output and Path(args.output.replace("{name}", "x")).suffix.lower() not in VIDEO_SUFFIXES:
        raise DemoError(f"{args.output}: --output must end in {', '.join(VIDEO_SUFFIXES)}")
    if args.events_url and not re.match(r"^https?://", args.events_url):
        raise DemoError(f"--events-url {args.events_url}: must be an http:// or https:// URL")
    if (
        not args.no_show
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        raise DemoError(
            "no display to show the video on: use --no-show (with --output, --json or --timeline)"
        )


def _open(source: str, args: argparse.Namespace, decode_threads: int | None) -> FrameSource:
    if args.loop:
        return LoopingFile(source, decode_threads=decode_threads)
    opened = open_source(source, decode_threads)
    if opened.live and args.reconnect_tries != 0:
        opened.release()
        return ReconnectingSource(lambda: open_source(source, decode_threads), tries=args.reconnect_tries)
    return opened


def _events(args: argparse.Namespace) -> EventBus | None:
    sinks = []
    if args.events:
        sinks.append(JsonLinesSink(args.events))
    if args.events_url:
        sinks.append(HttpSink(args.events_url))
    return EventBus([EventDelivery(sink, max_queue=args.events_queue) for sink in sinks]) if sinks else None


def _describe(model: ExportedModel, stream: Stream) -> str:
    rule, settings = stream.recognizer.rule, stream.timeline
    no_action = (
        f"classes {[model.class_names[i] for i in sorted(rule.no_action_ids)]}"
        if rule.no_action_ids
        else "no class"
    )
    threshold = f", top score below {rule.threshold:.3f}" if rule.threshold is not None else ", no threshold"
    return (
        f"no action: {no_action}{threshold}, hysteresis {rule.hysteresis:g}, average "
        f"{stream.recognizer.average}; timeline: segments of {settings.min_segment_s:g} s or more"
    )


def main(argv: list[str] | None = None, prog: str = "demo.py", default_model: Path | None = None) -> int:
    args = build_parser(prog, default_model).parse_args(argv)
    events = None
    try:
        _check(args)
        sources = parse_sources(args.input, args.inputs)
        several = len(sources) > 1
        xml = Path(args.model)
        if args.int8:
            xml = xml.with_name("model_int8.xml")
        config = None
        if several or args.cpu_streams:
            config = (
                throughput_config(args.threads, args.cpu_streams)
                if args.device.upper().startswith("CPU")
                else {}
            )
        model = ExportedModel(
            xml, device=args.device, threads=args.threads, precision=args.precision_hint, config=config
        )
        settings = StreamSettings(
            stride=args.stride,
            average=args.average,
            threshold=args.threshold,
            hysteresis=args.hysteresis,
            min_segment_s=args.min_segment,
            top_k=args.top_k,
            max_frames=args.max_frames,
            pace=args.realtime,
        )
        streams = []
        for name, spec in sources:
            outputs = StreamOutputs(
                _per_stream(args.output, name, several, "--output"),
                _per_stream(args.json, name, several, "--json"),
                _per_stream(args.timeline, name, several, "--timeline"),
            )
            source = _open(spec, args, 1 if several else None)  # many streams: one decoder thread each
            if outputs.timeline and not source.live and not source.fps:
                raise DemoError(f"{spec}: the file has no frame rate, so --timeline has no times")
            streams.append(Stream(name, source, model, settings, outputs, show=not args.no_show))
        events = _events(args)
        runner = StreamRunner(model, streams, requests=args.requests, events=events, show=not args.no_show)
        print(
            f"{model.path}: {len(model.class_names)} classes, clip {model.input['clip_len']} frames, input "
            f"{model.input['format']}; {len(streams)} input(s), {runner.requests} infer request(s)"
        )
        for s in streams:
            step = model.frame_step(s.source.fps)
            kind = "live" if s.source.live else "file"
            print(
                f"  {s.name}: {s.source.name} ({kind}, {s.source.fps or '?'} fps, sampling every {step:g} frame(s))"
            )
        print(_describe(model, streams[0]))
        summary = runner.run()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        delivered = events.close() if events is not None else []
    return _report(summary, delivered, model, args)


def _report(summary: dict, delivered: list[dict], model: ExportedModel, args: argparse.Namespace) -> int:
    status = 0
    for s in summary["streams"]:
        print(
            f"{s['name']}: {s['frames_read']} frames read ({s['frames_decoded']} decoded), {s['windows']} windows, "
            f"{s['segments']} segments; stale dropped: {s['windows_stale']} windows, {s['frames_dropped']} frames; "
            f"decode {s['decode_ms_per_frame']:.2f} / preprocess {s['preprocess_ms_per_frame']:.2f} ms per frame, "
            f"infer {s['infer_ms_per_window']:.1f} ms per window"
        )
        if s["source_drops"]:
            print(f"{s['name']}: the source dropped {s['source_drops']} time(s) and was reopened")
        if s["windows"] == 0 and not s["error"]:
            span = int(round((model.input["clip_len"] - 1) * model.frame_step(None))) + 1
            print(
                f"{s['name']}: note: the input ended before the first window was full (about {span} frames are needed)"
            )
        if s["error"]:
            print(f"error: {s['name']}: {s['error']}", file=sys.stderr)
            status = 1
    for d in delivered:
        print(
            f"events to {d['sink']}: {d['delivered']} delivered, {d['dropped']} dropped, {d['failed_attempts']} failed attempts"
        )
    print(f"{len(summary['streams'])} input(s) in {summary['elapsed_s']:.1f} s")
    for flag in ("output", "json", "timeline"):
        pattern = getattr(args, flag)
        if pattern:
            written = [
                pattern.replace("{name}", s["name"])
                + (f" ({s['segments']} segments)" if flag == "timeline" else "")
                for s in summary["streams"]
                if not s["error"]
            ]
            print(f"wrote {', '.join(written)}")
    return status
