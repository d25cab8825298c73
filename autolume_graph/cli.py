"""Command line: run | render | edit | nodes | dump | generate | bench.

Exit status: 0 when the work is done; 2 for a user mistake (a bad argument, graph, model or path,
an output that cannot be written: one line on stderr, never a traceback); `run` ends with 0 on
SIGTERM and 130 on Ctrl+C, after finishing its outputs; other commands stopped by a signal end
with 130 (SIGINT) or 143 (SIGTERM). A traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from autolume_graph import arg_types
from autolume_graph.devices import CHOICES
from autolume_graph.errors import UserError
from autolume_graph.graph_files import open_graph, resolve_graph_path
from autolume_graph.stop_signals import Stopped, StopRequest, interrupted_status, interrupting, show_status

if TYPE_CHECKING:
    from autolume_graph.outputs.run_out import FrameTap
    from autolume_graph.session import Session


def cmd_nodes(args: argparse.Namespace) -> int:
    from autolume_graph.params import params_doc
    from autolume_graph.registry import default_registry

    registry = default_registry()
    for name, cls in sorted(registry.types.items()):
        example = cls()  # a fresh node, named as the first one of its type would be, for its default addresses
        example.name = name.lower()
        print(f"{name}  [{cls.category}]{'  (sink)' if cls.sink else ''}  v{cls.type_version}")
        if cls.__doc__:
            print(f"    {cls.__doc__.strip().splitlines()[0]}")
        for port, decl in cls.inputs.items():
            print(f"    in   {port}: {decl.type.name}  {decl.doc}")
        for port, decl in cls.outputs.items():
            print(f"    out  {port}: {decl.type.name}  {decl.doc}")
        for pname, info in params_doc(cls.params).items():
            rng = f"[{info['min']}, {info['max']}]" if "min" in info and "max" in info else ""
            choices = f" {{{', '.join(info['choices'])}}}" if "choices" in info else ""
            if "limit" in info:
                rng += f" (limit {info['limit'][0]:g}..{info['limit'][1]:g})"
            binding = example.binding(pname)
            osc = binding.address if cls.params[pname].osc_addressable else "-"
            osc += "" if binding.enabled or osc == "-" else " (bind to use)"
            print(f"    par  {pname}: {info['type']} = {info.get('default')!r} {rng}{choices}"
                  f" {info.get('unit', '')}  osc {osc}  {info.get('doc', '')}")
        example.close()
    for module, reason in registry.failures.items():
        print(f"! {module}: {reason}", file=sys.stderr)
    return 0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"array": obj.dtype.str, "shape": list(obj.shape),
                **({"values": obj.tolist()} if obj.size <= 64 else {})}
    if isinstance(obj, bytes):
        return {"bytes": len(obj)}
    raise TypeError(type(obj).__name__)


def cmd_dump(args: argparse.Namespace) -> int:
    from autolume_graph.serialize import read_graph_data

    print(json.dumps(read_graph_data(resolve_graph_path(args.file)), indent=2, default=_jsonable))
    return 0


def checked_device(choice: str) -> str:
    """The device for `--device`; UserError where this machine lacks it."""
    from autolume_graph.devices import device_problem, resolve_device

    device = resolve_device(choice)
    problem = device_problem(device)
    if problem is not None:
        raise UserError(f"--device {choice}: {problem}")
    return device


def _frame_tap(out: str | None, fps: float) -> FrameTap | None:
    """Where `run --out` writes frames (see `outputs.run_out`); None without --out."""
    if not out:
        return None
    from autolume_graph.outputs.run_out import FrameTap, open_frame_file

    return FrameTap(open_frame_file(Path(out), fps))


def _close_show(session: Session, tap: FrameTap | None, discard: bool) -> None:
    """Close the show's parts in order: the render thread and the graph's nodes (windows, recorders, NDIOut
    handing its sender back), the --out file (finished, or dropped with `discard`), then every NDI sender
    and the NDI runtime, whose threads must be gone before the interpreter exits (see `outputs.ndi`)."""
    from autolume_graph.outputs import ndi, ndi_pool

    try:
        session.close()
        if tap is not None:
            if not discard:
                tap.take(session.runtime.snapshot)  # the last frame: hooks write each frame at the next one's start
            tap.out.close(discard=discard or tap.error is not None)
            if tap.error is not None and not discard:
                raise tap.error
    finally:
        ndi_pool.pool.close_all()
        ndi.shutdown()


@contextmanager
def _show_closed(session: Session, tap: FrameTap | None) -> Iterator[None]:
    """`_close_show` whatever happens inside; an exception drops the --out file (the old one stays)."""
    try:
        yield
    except BaseException:
        _close_show(session, tap, discard=True)
        raise
    _close_show(session, tap, discard=False)


def _check(tap: FrameTap | None) -> None:
    if tap is not None and tap.error is not None:
        raise tap.error


def _show(session: Session, tap: FrameTap | None, frames: int, stop: StopRequest) -> None:
    """Run `frames` frames on this thread, or (0) the render thread until a stop is requested."""
    runtime = session.runtime
    if frames:
        due = time.perf_counter()
        for index in range(frames):
            if stop.requested.is_set():
                break
            runtime.step()
            _check(tap)
            session.report_errors()
            if index + 1 < frames and runtime.clock.fixed_fps is None:
                due = runtime.wait_for_next_frame(due)  # --fps paces these frames as it paces a live show
        return
    runtime.start()
    last_frame_seen = -1
    while not stop.requested.wait(0.5):
        _check(tap)
        snap = runtime.snapshot
        if snap.frame != last_frame_seen:
            last_frame_seen = snap.frame
            print(f"\rframe {snap.frame}  {snap.fps:5.1f} fps", end="", file=sys.stderr)
            session.report_errors()
    print(file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session

    graph = open_graph(args.graph)
    runtime = Runtime(graph, fps=args.fps, fixed_step=args.fixed_step, device=checked_device(args.device))
    session = Session(runtime, osc_host=args.osc_host, osc_port=args.osc_port, oscquery_port=args.oscquery_port,
                      ndi_name=args.ndi_name, osc=not args.no_osc, osc_allow=args.osc_allow)
    tap = _frame_tap(args.out, args.fps)
    if tap is not None:
        runtime.frame_hooks.append(tap)
    stop = StopRequest()
    start = time.perf_counter()
    try:
        with stop.active(), _show_closed(session, tap):
            print("preparing (loading models)...", file=sys.stderr)
            for node in graph.nodes.values():
                node.prepare(runtime.device)
            session.start_services()
            print(f"running {args.graph or 'default'} on {runtime.device}"
                  f"{f', OSC on {session.osc_address}' if session.osc_address else ''}", file=sys.stderr)
            stop.defer()  # from now on a signal ends the show after its current frame
            start = time.perf_counter()
            _show(session, tap, args.frames, stop)
    except Stopped:  # before the show began: nothing to finish
        pass
    elapsed = time.perf_counter() - start
    frames = runtime.snapshot.frame + 1  # the render thread has stopped: this is the last frame made
    print(f"{frames} frames in {elapsed:.2f} s: {frames / max(elapsed, 1e-9):.2f} fps"
          f"{f', written to {tap.out.path}' if tap is not None and frames else ''}")
    return show_status(stop.signum)


def cmd_render(args: argparse.Namespace) -> int:
    from autolume_graph import render

    try:
        if (args.loop and args.seconds is not None) or not (args.loop or args.seconds is not None or args.audio):
            raise render.RenderError("give one of --loop or --seconds S (or --audio FILE: the song's length)")
        size = render.parse_size(args.size) if args.size else None
        song = render.audio_seconds(args.audio) if args.audio else None
        graph = open_graph(args.graph)
        seconds = render.loop_seconds(graph) if args.loop else args.seconds if args.seconds is not None else song
        frames = render.frame_count(seconds, args.fps)
        players = len(render.audio_players(graph))
        written = render.render(graph, args.out, fps=args.fps, size=size, frames=frames,
                                device=checked_device(args.device), progress=sys.stderr, audio=args.audio)
    except render.RenderError as exc:
        raise UserError(str(exc)) from None
    print(f"{written} frames ({written / args.fps:.3f} s at {args.fps:g} fps) written to {args.out}")
    if args.audio:
        heard = f"played by {players} AudioFile node{'s' if players != 1 else ''}" if players else \
            "muxed only: the graph has no AudioFile node"
        print(f"audio: {args.audio} as AAC, {heard}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse's refusals as one line and exit status 2, without the usage block (`--help` shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="autolume-graph", description=__doc__.splitlines()[0],
                           epilog=" ".join(__doc__.split("\n\n", 1)[1].split()))
    sub = parser.add_subparsers(dest="command", required=True)
    devices = list(CHOICES)

    p = sub.add_parser("run", help="run a graph headless",
                       epilog="Ends on its own after --frames, or on Ctrl+C or SIGTERM: the current frame is "
                              "finished, outputs are closed in order and --out is completed. Exit status 0 "
                              "(SIGTERM included), 130 on Ctrl+C, 2 for a mistake (one line on stderr).")
    p.add_argument("graph", nargs="?", help="graph file or shipped graph name (default: default)")
    p.add_argument("--frames", type=arg_types.count, default=0, help="stop after N frames (0: run until stopped)")
    p.add_argument("--fps", type=arg_types.live_rate, default=30.0,
                   help="target frame rate (0: as fast as possible)")
    p.add_argument("--fixed-step", action="store_true",
                   help="advance the clock 1/fps per frame (with --frames: as fast as they render)")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--out", help="write frames: .mp4 video, .npy stack (uint8) or .png/.jpg (last frame)")
    p.add_argument("--osc-host", default=None, help="OSC listen address (0.0.0.0: all interfaces)")
    p.add_argument("--osc-port", type=arg_types.port, default=None, help="OSC UDP port (default 1338; 0: any free)")
    p.add_argument("--oscquery-port", type=arg_types.port, default=None,
                   help="OSCQuery HTTP port (default OSC port + 1)")
    p.add_argument("--osc-allow", type=arg_types.allow_list, default=None, metavar="CIDR[,CIDR]",
                   help="take OSC only from these networks or hosts (default: the graph's setting, else all)")
    p.add_argument("--no-osc", action="store_true", help="do not listen for OSC")
    p.add_argument("--ndi-name", default=None, help="NDI sender name of the graph's NDIOut node")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("render", help="render a graph offline to MP4: one seamless loop or S seconds")
    p.add_argument("graph", help="graph file or shipped graph name")
    p.add_argument("--loop", action="store_true", help="exactly one cycle of the graph's loop node")
    p.add_argument("--seconds", type=arg_types.duration, default=None, help="length in seconds")
    p.add_argument("--fps", type=arg_types.rate, default=30.0, help="frame rate of the clock and the video")
    p.add_argument("--size", default=None, help="frame size WIDTHxHEIGHT (default: the image's own)")
    p.add_argument("--out", required=True, help=".mp4 file to write")
    p.add_argument("--audio", default=None, metavar="FILE",
                   help="a song: every AudioFile node plays it, it is muxed in as AAC, and (without --loop or "
                        "--seconds) its length is the render's")
    p.add_argument("--device", default="auto", choices=devices)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("nodes", help="list every node type with ports, parameters and OSC addresses")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("dump", help="print a graph file as JSON")
    p.add_argument("file")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("edit", help="open the node editor")
    p.add_argument("graph", nargs="?")
    p.set_defaults(func=lambda a: _lazy("autolume_graph.ui.app", "cmd_edit")(a))

    p = sub.add_parser("generate", help="render one image from a model and a seed")
    p.add_argument("model", help="network pickle, our model file, or a name in models/ ('default')")
    p.add_argument("--seed", type=arg_types.seed, default=0)
    p.add_argument("--psi", type=arg_types.finite, default=1.0, help="truncation (diversity)")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    p.add_argument("--device", default="cpu", choices=devices)
    p.add_argument("--tx", type=arg_types.finite, default=0.0, help="StyleGAN3 input translate x")
    p.add_argument("--ty", type=arg_types.finite, default=0.0, help="StyleGAN3 input translate y")
    p.add_argument("--rotate", type=arg_types.finite, default=0.0, help="StyleGAN3 input rotation, degrees")
    p.add_argument("--class", dest="class_idx", type=arg_types.integer_in(0, None, "a class index (0 or more)"),
                   default=None, help="a conditional model's class (default 0; clipped to its count)")
    p.add_argument("--network", default="G_ema", choices=["G_ema", "G"],
                   help="which generator of a training snapshot (G: what Autolume Live renders)")
    p.add_argument("--out", required=True, help=".png/.jpg (uint8) or .npy (float32 CHW)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("bench", help="benchmark a graph, or the default graph with a model file")
    p.add_argument("target", nargs="?", default="default", help="graph file/name or model file (.pkl)")
    p.add_argument("--frames", type=arg_types.positive_count, default=100)
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("convert", help="convert a network pickle (NVIDIA, Autolume, TensorFlow) to our safe model file")
    p.add_argument("source", help="network pickle to read (as data: nothing in it is run)")
    p.add_argument("target", help="our model file to write (.safetensors; never overwrites)")
    p.add_argument("--network", default="G_ema", choices=["G_ema", "G"],
                   help="which generator of a training snapshot (TensorFlow: G_ema is Gs)")
    p.set_defaults(func=lambda a: _lazy("autolume_graph.convert", "cmd_convert")(a))
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    from autolume_graph.bench import print_report, run_bench

    print_report(run_bench(args.target, args.frames, checked_device(args.device)), args.json)
    return 0


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"this command is not available: {exc}") from None


def _warn(note: str) -> None:
    if note:
        print(f"autolume-graph: note: {note}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from autolume_graph.gan.family import family_of
    from autolume_graph.gan.generate import check_output, render_seed, save_image
    from autolume_graph.gan.loader import load_model
    from autolume_graph.gan.mapping import class_input
    from autolume_graph.gan.store import resolve_model_path

    out = check_output(args.out)  # before the model loads: a wrong suffix costs nothing
    device = checked_device(args.device)
    model = load_model(resolve_model_path(args.model), device=device, network=args.network)
    _warn(model.load_note)
    if any((args.tx, args.ty, args.rotate)):
        move_input = family_of(model).set_input_transform
        if move_input is None:
            raise UserError("--tx/--ty/--rotate need a StyleGAN3 model")
        move_input(model, args.tx, args.ty, args.rotate)
    c_dim = model.c_dim
    classes = class_input(c_dim, args.class_idx or 0)
    if not c_dim:
        _warn("this model is unconditional: --class ignored" if args.class_idx is not None else "")
    else:
        _warn(classes.note if args.class_idx is not None
              else f"conditional model ({c_dim} classes): rendering class 0 (give --class K)")
    image = render_seed(model, args.seed, args.psi, args.noise_mode, device, c=classes.tensor(device))
    save_image(image, out)
    height, width = model.img_size
    label = f", class {classes.weights.index(1.0)}" if c_dim else ""
    print(f"wrote {out} ({model.family}, {width}x{height}, seed {args.seed}, psi {args.psi}{label})")
    return 0


USER_ERRORS = {  # module: error class, for what a user's input or environment causes (besides OSError)
    "autolume_graph.errors": "UserError",
    "autolume_graph.graph": "GraphError",
    "autolume_graph.serialize": "GraphFileError",
    "autolume_graph.gan.safe_pickle": "ModelFileError",
    "autolume_graph.gan.latent": "VectorFileError",
    "autolume_graph.file_reads": "FileRefused",
    "autolume_graph.outputs.errors": "OutputError",
    "autolume_graph.workspace": "WriteRefused",
}


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The user-caused error classes; any other exception is a bug and keeps its traceback. Only modules
    already imported are asked: an error whose module never loaded cannot have been raised, and importing
    them (torch) would cost seconds on every mistake."""
    loaded = (getattr(sys.modules[module], name, None) for module, name in USER_ERRORS.items()
              if module in sys.modules)
    return (OSError, *(kind for kind in loaded if kind is not None))


def describe(exc: BaseException) -> str:
    """One line for a user error; an OSError as `FILE: reason`, without the errno."""
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (argparse's refusals too: 2, or 0 for --help)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exited:
        return exited.code if isinstance(exited.code, int) else 2
    try:
        with interrupting():
            return int(args.func(args) or 0)
    except Stopped as stopped:
        print(f"autolume-graph: stopped by {stopped}", file=sys.stderr)
        return interrupted_status(stopped.signum)
    except _user_error_types() as exc:
        print(f"autolume-graph: {describe(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
