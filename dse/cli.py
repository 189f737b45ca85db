"""The ``accelforge`` command line.

Every command validates all of its input before it writes anything; bad
input ends with one line on stderr and exit status 2. ``--json`` prints one
JSON document on stdout and nothing else there.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cost_models.ops import Gemm
from cost_models.targets import TARGETS, get_target
from dse.families import FAMILIES, Family, get_family
from generators.artifact import render, write
from generators.params import Params

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:          # one line, not usage + message
        raise UsageError(message)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(document), indent=2) + "\n")


def _params(family: Family, settings: Sequence[str]) -> Params:
    values: dict[str, str] = {}
    for item in settings or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, not {item!r}")
        values[key.strip()] = value
    return family.params.from_strings(values)


def _estimate_row(family: Family, params: Params, gemm: Gemm, target_name: str) -> dict[str, Any]:
    table = family.estimate(params, gemm, get_target(target_name))
    return {key: _jsonable(column[0]) for key, column in table.items()}


def _status(message: str, quiet: bool):
    """A spinner on an interactive stderr, nothing in CI or with --json."""
    if quiet or not sys.stderr.isatty():
        from contextlib import nullcontext
        return nullcontext()
    from rich.console import Console
    return Console(stderr=True).status(message)


# ---------------------------------------------------------------------- commands
def cmd_generate(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    params = _params(family, args.set)
    gemm = Gemm.parse(args.gemm) if args.gemm else family.default_gemm(params)
    target = get_target(args.target)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder, not the file {str(out)!r}")
    prediction = {"target": target.name, "gemm": [gemm.m, gemm.n, gemm.k],
                  **_estimate_row(family, params, gemm, target.name),
                  "model": family.model_info()}
    artifact = render(params, family.build, extra={"prediction": _jsonable(prediction)})
    files = write(artifact, out)
    if args.json:
        _print_json({"top": artifact.top, "files": {k: str(v) for k, v in files.items()},
                     "hash": params.digest()})
    else:
        print(f"{artifact.top}: wrote {files['verilog']} and {files['manifest']}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    params = _params(family, args.set)
    gemm = Gemm.parse(args.gemm) if args.gemm else family.default_gemm(params)
    row = _estimate_row(family, params, gemm, args.target)
    document = {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                "target": args.target, "gemm": [gemm.m, gemm.n, gemm.k], **row,
                "model": family.model_info()}
    if args.json:
        _print_json(document)
    else:
        width = max(len(k) for k in row)
        print(f"{family.name} {params.digest()} on {args.target}, GEMM {gemm.m}x{gemm.n}x{gemm.k}")
        for key, value in row.items():
            print(f"  {key:<{width}}  {value:.6g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from dse.verify import verify

    family = get_family(args.family)
    params = _params(family, args.set)
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {args.seed}")
    with _status(f"verifying {family.name} {params.digest()} on Verilator", args.json):
        result = verify(family, params, seed=args.seed, waves=args.waves)
    document = {"family": family.name, "params": params.to_dict(), "hash": params.digest(),
                "seed": args.seed, **result.to_dict()}
    if args.json:
        _print_json(document)
    else:
        print(result.sim.summary())
        bad = [c for c in result.checks if not c.ok]
        print(f"{len(result.checks)} cycle checks against the model, {len(bad)} mismatched:")
        print(f"  {'test':<22} {'figure':<22} {'measured':>9} {'model':>9}  rule")
        shown = set()
        for c in result.checks:
            if (c.test, c.figure) in shown and c.ok:
                continue                                  # one line per figure unless it failed
            shown.add((c.test, c.figure))
            rule = ("==" if c.exact else ">=") + ("" if c.ok else "  MISMATCH")
            print(f"  {c.test:<22} {c.figure:<22} {c.measured:>9} {c.model:>9}  {rule}")
    return 0 if result.passed else EXIT_FAILED


# ---------------------------------------------------------------------- parser
def _add_design_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="set a parameter (repeatable); `accelforge params FAMILY` lists them")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gemm", metavar="M,N,K", help="GEMM to price (default: one tile at k_max)")
    p.add_argument("--target", default="ecp5-85k", help=f"one of: {', '.join(TARGETS)}")


def cmd_params(args: argparse.Namespace) -> int:
    family = get_family(args.family)
    infos = family.params.fields()
    if args.json:
        _print_json([{"name": i.name, "allowed": i.describe(),
                      "default": i.default.value if hasattr(i.default, "value") else i.default,
                      "doc": i.spec.doc} for i in infos])
        return 0
    for i in infos:
        default = i.default.value if hasattr(i.default, "value") else i.default
        print(f"{i.name:<10} {i.describe():<34} default {default!s:<6} {i.spec.doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelforge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("generate", help="write Verilog and manifest.json for one design")
    _add_design_args(p)
    _add_workload_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("estimate", help="print the cost model's PPA for one design")
    _add_design_args(p)
    _add_workload_args(p)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("verify", help="simulate one design with cocotb on Verilator")
    _add_design_args(p)
    p.add_argument("--seed", type=int, default=1, help="random seed of the testbench")
    p.add_argument("--waves", action="store_true", help="dump a VCD of the run")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("params", help="list a family's parameters and allowed values")
    p.add_argument("family", help=f"one of: {', '.join(FAMILIES)}")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError) as exc:
        print(f"accelforge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("accelforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
