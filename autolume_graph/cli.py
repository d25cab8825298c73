"""Command line: run | render | edit | nodes | dump | generate | bench.

User mistakes end with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autolume_graph.errors import UserError
from autolume_graph.graph import Graph


def resolve_graph_path(ref: str | None) -> Path:
    """A graph file path, or the name of a shipped graph (`default`)."""
    from importlib import resources

    ref = ref or "default"
    path = Path(ref)
    if path.exists():
        return path
    shipped = resources.files("autolume_graph.graphs") / f"{ref}.agraph"
    if shipped.is_file():
        return Path(str(shipped))
    raise UserError(f"{ref}: no such graph file or shipped graph")


def open_graph(ref: str | None) -> Graph:
    from autolume_graph.serialize import load_graph

    return load_graph(resolve_graph_path(ref))


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
            print(f"    in   {port}: {decl.type.value}  {decl.doc}")
        for port, decl in cls.outputs.items():
            print(f"    out  {port}: {decl.type.value}  {decl.doc}")
        for pname, info in params_doc(cls.params).items():
            rng = f"[{info['min']}, {info['max']}]" if "min" in info and "max" in info else ""
            choices = f" {{{', '.join(info['choices'])}}}" if "choices" in info else ""
            osc = example.binding(pname).address if cls.params[pname].osc_addressable else "-"
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


def _frame_writer(out: Path | None, fps: float) -> tuple[Callable[[Any, float], None], Callable[[], None]]:
    """Where `run --out` puts frames: .mp4 (video, every frame), .npy (all frames, uint8), .png (the last)."""
    if out is None:
        return (lambda image, t: None), (lambda: None)
    from autolume_graph.outputs.frames import FrameConverter

    suffix = out.suffix.lower()
    converter = FrameConverter()
    if suffix == ".mp4":
        from autolume_graph.outputs.errors import OutputError
        from autolume_graph.outputs.recorder import VideoRecorder

        recorder = VideoRecorder(out, fps or 30.0)

        def write_mp4(image: Any, t: float) -> None:
            try:
                recorder.write_every(converter.convert(image).bgra, t)
            except OutputError as exc:
                raise UserError(str(exc)) from None

        def close_mp4() -> None:
            recorder.close()
            if recorder.error:
                raise UserError(str(recorder.error))

        return write_mp4, close_mp4
    if suffix not in (".npy", ".png"):
        raise UserError(f"{out}: --out must end in .mp4, .npy or .png")
    frames: list[np.ndarray] = []

    def close() -> None:
        if not frames:
            raise UserError("the graph produced no image (is there a Preview node?)")
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            np.save(out, np.stack(frames))
        else:
            from PIL import Image

            Image.fromarray(frames[-1]).save(out)

    return (lambda image, t: frames.append(converter.convert(image).rgb.copy())), close


def cmd_run(args: argparse.Namespace) -> int:
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session

    graph = open_graph(args.graph)
    session = Session(Runtime(graph, fps=args.fps, fixed_step=args.fixed_step, device=args.device),
                      osc_host=args.osc_host, osc_port=args.osc_port, oscquery_port=args.oscquery_port,
                      ndi_name=args.ndi_name, osc=not args.no_osc)
    write, finish = _frame_writer(Path(args.out) if args.out else None, args.fps)
    runtime = session.runtime
    print("preparing (loading models)...", file=sys.stderr)
    for node in graph.nodes.values():
        node.prepare(runtime.device)
    session.start_services()
    print(f"running {args.graph or 'default'} on {runtime.device}"
          f"{f', OSC on {session.osc_address}' if session.osc_address else ''}", file=sys.stderr)
    start = time.perf_counter()
    frames = 0
    last_frame_seen = -1
    try:
        if args.frames:
            runtime.target_fps = args.fps
            for _ in range(args.frames):
                snap = runtime.step()
                frames += 1
                for image in snap.published.values():
                    write(image, snap.time)
                    break
                session.report_errors()
        else:
            runtime.start()
            while True:
                time.sleep(0.5)
                snap = runtime.snapshot
                if snap.frame != last_frame_seen:
                    last_frame_seen = snap.frame
                    print(f"\rframe {snap.frame}  {snap.fps:5.1f} fps", end="", file=sys.stderr)
                    session.report_errors()
    except KeyboardInterrupt:
        pass
    finally:
        frames = frames or max(runtime.snapshot.frame + 1, 0)
        elapsed = time.perf_counter() - start
        session.close()
        finish()
    print(f"{frames} frames in {elapsed:.2f} s: {frames / max(elapsed, 1e-9):.2f} fps"
          f"{f', written to {args.out}' if args.out else ''}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from autolume_graph import render
    from autolume_graph.runtime import resolve_device

    try:
        if args.loop == (args.seconds is not None):
            raise render.RenderError("give one of --loop or --seconds S")
        size = render.parse_size(args.size) if args.size else None
        graph = open_graph(args.graph)
        seconds = render.loop_seconds(graph) if args.loop else args.seconds
        frames = render.frame_count(seconds, args.fps)
        written = render.render(graph, args.out, fps=args.fps, size=size, frames=frames,
                                device=resolve_device(args.device), progress=sys.stderr)
    except render.RenderError as exc:
        raise UserError(str(exc)) from None
    print(f"{written} frames ({written / args.fps:.3f} s at {args.fps:g} fps) written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autolume-graph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a graph headless")
    p.add_argument("graph", nargs="?", help="graph file or shipped graph name (default: default)")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: run until Ctrl+C)")
    p.add_argument("--fps", type=float, default=30.0, help="target frame rate (0: as fast as possible)")
    p.add_argument("--fixed-step", action="store_true", help="advance the clock 1/fps per frame")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", help="write frames: .mp4 video, .npy stack (uint8) or .png (last frame)")
    p.add_argument("--osc-host", default=None, help="OSC listen address (0.0.0.0: all interfaces)")
    p.add_argument("--osc-port", type=int, default=None, help="OSC UDP port (default 1338)")
    p.add_argument("--oscquery-port", type=int, default=None, help="OSCQuery HTTP port (default OSC port + 1)")
    p.add_argument("--no-osc", action="store_true", help="do not listen for OSC")
    p.add_argument("--ndi-name", default=None, help="NDI sender name of the graph's NDIOut node")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("render", help="render a graph offline to MP4: one seamless loop or S seconds")
    p.add_argument("graph", help="graph file or shipped graph name")
    p.add_argument("--loop", action="store_true", help="exactly one cycle of the graph's loop node")
    p.add_argument("--seconds", type=float, default=None, help="length in seconds")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the clock and the video")
    p.add_argument("--size", default=None, help="frame size WIDTHxHEIGHT (default: the image's own)")
    p.add_argument("--out", required=True, help=".mp4 file to write")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=1.0, help="truncation (diversity)")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--tx", type=float, default=0.0, help="StyleGAN3 input translate x")
    p.add_argument("--ty", type=float, default=0.0, help="StyleGAN3 input translate y")
    p.add_argument("--rotate", type=float, default=0.0, help="StyleGAN3 input rotation, degrees")
    p.add_argument("--out", required=True, help=".png (uint8) or .npy (float32 CHW)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("bench", help="benchmark a graph, or the default graph with a model file")
    p.add_argument("target", nargs="?", default="default", help="graph file/name or model file (.pkl)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    from autolume_graph.bench import print_report, run_bench

    print_report(run_bench(args.target, args.frames, args.device), args.json)
    return 0


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"this command is not available: {exc}") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from autolume_graph.gan.generate import render_seed, save_image
    from autolume_graph.gan.loader import load_model
    from autolume_graph.gan.store import resolve_model_path
    from autolume_graph.runtime import resolve_device

    device = resolve_device(args.device)
    model = load_model(resolve_model_path(args.model), device=device)
    if any((args.tx, args.ty, args.rotate)):
        if not hasattr(model, "set_transform"):
            raise UserError("--tx/--ty/--rotate need a StyleGAN3 model")
        model.set_transform(args.tx, args.ty, args.rotate)
    image = render_seed(model, args.seed, psi=args.psi, noise_mode=args.noise_mode, device=device)
    save_image(image, args.out)
    print(f"wrote {args.out} ({model.family}, {model.img_resolution} px, seed {args.seed}, psi {args.psi})")
    return 0


def _user_error_types() -> tuple[type[BaseException], ...]:
    from autolume_graph.graph import GraphError
    from autolume_graph.serialize import GraphFileError

    kinds: list[type[BaseException]] = [UserError, GraphError, GraphFileError, FileNotFoundError]
    try:
        from autolume_graph.gan.safe_pickle import ModelFileError

        kinds.append(ModelFileError)
    except ImportError:
        pass
    return tuple(kinds)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_error_types() as exc:
        print(f"autolume-graph: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
