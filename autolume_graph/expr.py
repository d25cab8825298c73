"""Safe OSC mapping expressions in `x`, compiled once into a closure.

Autolume ran `eval` on every message, so anyone's OSC setup could run code. Here the text is
parsed with `ast`, every node type and name is checked against an allow-list, and the tree is
turned into nested closures: nothing is ever passed to eval/exec/compile. All arithmetic is
done on floats (constants included), so `9**9**9` overflows at once instead of building a
huge integer, and sub-expressions without `x` are folded at compile time so such mistakes are
refused when the binding is edited, not on stage.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

MAX_LENGTH = 400
MAX_DEPTH = 40

Fn = Callable[[float], float]


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated; the message is one line."""


def _clip(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _sign(v: float) -> float:
    return float((v > 0) - (v < 0))


def _round(v: float, ndigits: float = 0) -> float:
    return float(round(v, int(ndigits)))


def _floor(v: float) -> float:
    return float(math.floor(v))


def _ceil(v: float) -> float:
    return float(math.ceil(v))


# name -> (function, min args, max args or None for any number)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "atan2": (math.atan2, 2, 2),
    "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "abs": (math.fabs, 1, 1),
    "min": (min, 2, None),
    "max": (max, 2, None),
    "floor": (_floor, 1, 1),
    "ceil": (_ceil, 1, 1),
    "round": (_round, 1, 2),
    "pow": (math.pow, 2, 2),
    "clip": (_clip, 3, 3),
    "lerp": (_lerp, 3, 3),
    "sign": (_sign, 1, 1),
}

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: math.pow,  # never complex, never a big int: raises instead
}

_UNARYOPS: dict[type, Callable[[float], float]] = {
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
    ast.Not: lambda a: float(not a),
}

_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}

_RUNTIME_ERRORS = (ArithmeticError, ValueError, TypeError)


class Mapping:
    """A compiled mapping: call it with the incoming value `x`, get the mapped float."""

    __slots__ = ("text", "_fn")

    def __init__(self, text: str, fn: Fn) -> None:
        self.text = text
        self._fn = fn

    def __call__(self, x: float) -> float:
        """Evaluate; any math failure or non-finite result raises ExpressionError."""
        try:
            v = float(self._fn(float(x)))
        except _RUNTIME_ERRORS as exc:
            raise ExpressionError(f"{self.text!r} at x={x!r}: {_reason(exc)}") from None
        if not math.isfinite(v):
            raise ExpressionError(f"{self.text!r} at x={x!r}: result is {v}")
        return v

    def apply_args(self, args: Sequence[object]) -> float:
        """Map an OSC message: `x` is its first argument (a number or bool); the rest are ignored."""
        if not args:
            raise ExpressionError("message has no arguments")
        first = args[0]
        if not isinstance(first, (int, float)):
            raise ExpressionError(f"first argument is {type(first).__name__}, not a number")
        return self(first)

    def __repr__(self) -> str:
        return f"Mapping({self.text!r})"


def compile_mapping(text: str) -> Mapping:
    """Compile `text` (an expression in `x`) once; empty text means the identity `x`."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be text")
    src = text.strip() or "x"
    if len(src) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression too deeply nested or malformed") from None
    fn, _ = _Builder().build(tree.body, 0)
    return Mapping(src, fn)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        return "overflow"
    return f"math domain error ({exc})" if str(exc) else "math domain error"


class _Builder:
    """Walks an allow-listed AST into closures; returns (fn, uses_x) and folds constant parts."""

    def build(self, node: ast.AST, depth: int) -> tuple[Fn, bool]:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"{_describe(node)} is not allowed")
        fn, uses_x = method(node, depth + 1)
        if uses_x:
            return fn, True
        return self._fold(fn), False

    @staticmethod
    def _fold(fn: Fn) -> Fn:
        try:
            value = fn(0.0)
        except _RUNTIME_ERRORS as exc:
            raise ExpressionError(f"constant part fails: {_reason(exc)}") from None
        value = float(value)
        return lambda x: value

    def _Constant(self, node: ast.Constant, depth: int) -> tuple[Fn, bool]:
        v = node.value
        if isinstance(v, bool) or isinstance(v, (int, float)):
            try:
                value = float(v)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise ExpressionError(f"number too large: {ast.unparse(node)[:20]}")
            return (lambda x: value), False
        raise ExpressionError(f"{type(v).__name__} constants are not allowed (only numbers)")

    def _Name(self, node: ast.Name, depth: int) -> tuple[Fn, bool]:
        if node.id == "x":
            return (lambda x: x), True
        if node.id in CONSTANTS:
            value = CONSTANTS[node.id]
            return (lambda x: value), False
        allowed = ", ".join(["x", *CONSTANTS])
        raise ExpressionError(f"unknown name {node.id!r} (allowed: {allowed}, or a function call)")

    def _BinOp(self, node: ast.BinOp, depth: int) -> tuple[Fn, bool]:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        (a, ua), (b, ub) = self.build(node.left, depth), self.build(node.right, depth)
        return (lambda x: op(a(x), b(x))), ua or ub

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[Fn, bool]:
        op = _UNARYOPS.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        a, ua = self.build(node.operand, depth)
        return (lambda x: op(a(x))), ua

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[Fn, bool]:
        parts = [self.build(v, depth) for v in node.values]
        fns = tuple(f for f, _ in parts)
        uses_x = any(u for _, u in parts)
        if isinstance(node.op, ast.And):

            def and_(x: float) -> float:
                v = 0.0
                for f in fns:
                    v = f(x)
                    if not v:
                        return v
                return v

            return and_, uses_x

        def or_(x: float) -> float:
            v = 0.0
            for f in fns:
                v = f(x)
                if v:
                    return v
            return v

        return or_, uses_x

    def _Compare(self, node: ast.Compare, depth: int) -> tuple[Fn, bool]:
        ops = []
        for op in node.ops:
            cmp = _COMPARE.get(type(op))
            if cmp is None:
                raise ExpressionError(f"comparison {type(op).__name__} is not allowed")
            ops.append(cmp)
        parts = [self.build(n, depth) for n in (node.left, *node.comparators)]
        fns = tuple(f for f, _ in parts)
        first, pairs = fns[0], tuple(zip(ops, fns[1:], strict=True))

        def compare(x: float) -> float:
            left = first(x)
            for cmp, right_fn in pairs:
                right = right_fn(x)
                if not cmp(left, right):
                    return 0.0
                left = right
            return 1.0

        return compare, any(u for _, u in parts)

    def _IfExp(self, node: ast.IfExp, depth: int) -> tuple[Fn, bool]:
        (t, ut), (a, ua), (b, ub) = (self.build(n, depth) for n in (node.test, node.body, node.orelse))
        return (lambda x: a(x) if t(x) else b(x)), ut or ua or ub

    def _Call(self, node: ast.Call, depth: int) -> tuple[Fn, bool]:
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"only calls of named functions are allowed, not {_describe(node.func)}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(f"{name!r} is not an allowed function (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise ExpressionError(f"{name}() takes no keyword arguments")
        func, lo, hi = FUNCTIONS[name]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"{lo}+" if hi is None else f"{lo} to {hi}"
            raise ExpressionError(f"{name}() takes {want} arguments, got {n}")
        parts = [self.build(a, depth) for a in node.args]  # Starred is refused here
        fns = tuple(f for f, _ in parts)
        uses_x = any(u for _, u in parts)
        if n == 1:
            (f0,) = fns
            return (lambda x: func(f0(x))), uses_x
        return (lambda x: func(*[f(x) for f in fns])), uses_x


def _describe(node: ast.AST) -> str:
    names = {
        "Attribute": "attribute access",
        "Subscript": "subscripting",
        "Lambda": "lambda",
        "List": "a list",
        "Tuple": "a tuple",
        "Dict": "a dict",
        "Set": "a set",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a comprehension",
        "NamedExpr": "assignment (:=)",
        "JoinedStr": "an f-string",
        "Starred": "star-arguments",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Slice": "slicing",
    }
    return names.get(type(node).__name__, type(node).__name__)
