"""Command line: ``python -m mfgbench list | evaluate | reference | run | tune | report``.

Bad input (unknown game, bad parameter, malformed policy file, bad suite, unusable
output folder or scheduler) prints one line naming the problem on stderr and exits with
status 2, without a traceback. Ctrl-C prints one line and exits with status 130.
"""
from __future__ import annotations

import argparse
import ast
import json
import shlex
import sys
import time

import numpy as np


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + exits 2; we want one line
        raise UsageError(message)


def parse_params(pairs) -> dict:
    """``["size=12", "sigma=0.5", "name=foo"]`` -> ``{"size": 12, "sigma": 0.5, "name": "foo"}``."""
    params = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --param {pair!r}: expected key=value")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        params[key.strip()] = value
    return params


def _make(game_id, params):
    from mfgbench.games import make
    try:
        return make(game_id, **params)
    except KeyError as exc:  # UnknownGameError
        raise UsageError(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _describe(game_id) -> str:
    from mfgbench.games import make, spec
    s = spec(game_id)
    try:
        game = make(game_id)
    except Exception as exc:  # a game that cannot be built is listed, not fatal
        return f"{game_id:28s} {s.kind:11s} (cannot build: {exc})"
    pops = getattr(game, "populations", ())
    if s.kind == "continuous":
        d = game.domain
        sizes = "x".join(f"[{a:g},{b:g}]" for a, b in zip(d.lo, d.hi)) + (" torus" if d.periodic else "")
        extra = f"T={getattr(game, 'horizon', '?')}"
    else:
        sizes = " ".join(f"{p.n_states}x{p.n_actions}" for p in pops)
        extra = f"T={game.horizon}" if s.kind == "finite" else f"gamma={getattr(game, 'gamma', '?')}"
    return (f"{game_id:28s} {s.kind:11s} K={len(pops) if pops else '-':<2} {sizes:18s} {extra:10s} "
            f"{s.description}" + (f"  [{s.source}]" if s.source else ""))


def cmd_list(args) -> int:
    from mfgbench.games import list_games
    print(f"{'id':28s} {'kind':11s} {'pops':4s} {'S x A / domain':18s} {'horizon':10s} description  [source]")
    for game_id in list_games():
        print(_describe(game_id))
    return 0


def _bridged(game_id, params, pairs):
    """A continuous game as the finite game tabular learners play: its Markov-chain discretization
    on the grid ``run`` uses (``DEFAULT_BRIDGE``), or the one given by ``--discretize``."""
    from types import SimpleNamespace

    from mfgbench.bench.runner import build_game
    from mfgbench.bench.suite import DEFAULT_BRIDGE
    bridge = {**DEFAULT_BRIDGE, **parse_params(pairs)}
    unknown = sorted(set(bridge) - set(DEFAULT_BRIDGE))
    if unknown:
        raise UsageError(f"bad --discretize {unknown[0]!r}: the grid is given by {', '.join(DEFAULT_BRIDGE)}")
    try:
        return build_game(SimpleNamespace(game=game_id, game_params=params, discretize=bridge)), bridge
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)) from None


def cmd_evaluate(args) -> int:
    from mfgbench.core import evaluate, load_policy, uniform_policy
    from mfgbench.errors import PolicyError
    from mfgbench.games import spec
    params = parse_params(args.param)
    game = _make(args.game, params)
    bridge = None
    if spec(args.game).kind == "continuous":
        game, bridge = _bridged(args.game, params, args.discretize)
    elif args.discretize:
        raise UsageError(f"--discretize applies to continuous games; {args.game} is {spec(args.game).kind}")
    try:
        policy = uniform_policy(game) if args.policy == "uniform" else load_policy(args.policy, game)
        start = time.perf_counter()
        ev = evaluate(game, policy)
        elapsed = time.perf_counter() - start
    except (PolicyError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    names = [p.name for p in game.populations]
    result = {"game": game.id, "params": game.params, "policy": args.policy,
              "exploitability": ev.exploitability,
              "per_population": dict(zip(names, map(float, ev.per_population))), "seconds": elapsed}
    if bridge is not None:
        result["discretize"] = bridge
    if args.json:
        print(json.dumps(result, default=_json_default))
    else:
        if bridge is not None:
            grid = ", ".join(f"{k}={v}" for k, v in bridge.items())
            print(f"{args.game} is continuous: evaluated on its Markov-chain discretization ({grid}), the finite "
                  f"game tabular learners play in `run`; `reference {args.game}` gives its PDE solution")
        print(f"game {game.id}  policy {args.policy}")
        print(f"exploitability {ev.exploitability:.10g}")
        for name, value in result["per_population"].items():
            print(f"  {name:12s} {value:.10g}")
    return 0


def cmd_reference(args) -> int:
    from mfgbench.games import spec
    try:
        kind = spec(args.game).kind
    except KeyError as exc:
        raise UsageError(str(exc)) from None
    params = parse_params(args.param)
    game = _make(args.game, params)
    start = time.perf_counter()
    if kind == "continuous":
        from reference_solvers import pde
        grid = {k: v for k, v in (("nx", args.nx), ("nt", args.nt)) if v is not None}
        try:
            result = pde.solve(game, **grid, tol=args.tol if args.tol is not None else 1e-10)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        summary = result.summary()
    else:
        from mfgbench.reference import reference, reference_summary
        try:
            result = reference(game, tol=args.tol if args.tol is not None else 1e-8)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        summary = reference_summary(result)
    summary.setdefault("time", time.perf_counter() - start)
    summary = {"game": game.id, **summary}
    if args.json:
        print(json.dumps(summary, default=_json_default))
    else:
        for key, value in summary.items():
            print(f"{key:16s} {value}")
    return 0


def _csv(text, convert=str, what="value"):
    if text is None:
        return None
    try:
        items = [convert(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"bad {what} list {text!r}") from None
    if not items:
        raise UsageError(f"empty {what} list")
    return items


def cmd_run(args) -> int:
    from pathlib import Path

    from mfgbench.bench import RunInterrupted, SuiteError, builtin, load_suite_file, run_suite
    from mfgbench.bench.executors import ExecutorError
    if args.budget is not None and args.budget < 1:
        raise UsageError(f"bad --budget {args.budget}: must be a positive number of iterations")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"bad --workers {args.workers}: must be >= 1")
    try:
        suite = load_suite_file(args.suite) if Path(args.suite).suffix.lower() in (".toml", ".json") \
            else builtin(args.suite)
        games, learners = _csv(args.games, what="game"), _csv(args.learners, what="learner")
        if games or learners:
            from mfgbench.bench.suite import _check_names
            _check_names(games or [], learners or [], "--games/--learners")
        suite = suite.select(games, learners, _csv(args.seeds, int, "seed"), args.budget)
        if args.tuned:
            from mfgbench.bench.suite import retuned
            suite = retuned(suite, args.tuned)
    except (SuiteError, ValueError) as exc:   # TunedFileError is a ValueError
        raise UsageError(str(exc)) from None
    if not suite.trials:
        raise UsageError(f"suite {suite.name}: no trial left after --games/--learners selection")
    if args.dask_local is not None and args.dask_local < 1:
        raise UsageError(f"bad --dask-local {args.dask_local}: must be >= 1")
    try:
        out = run_suite(suite, out=args.out, workers=args.workers, resume=args.resume, scheduler=args.scheduler,
                        dask_local=args.dask_local, quiet=args.quiet, retry_failed=args.retry_failed)
    except (SuiteError, ExecutorError) as exc:
        raise UsageError(str(exc)) from None
    except RunInterrupted as exc:
        print(f"mfgbench: {exc}", file=sys.stderr)
        return 130
    others = f" ({out['by_another_run']} by another run into the same folder)" if out["by_another_run"] else ""
    print(f"suite {suite.name}: {out['ran']} trials run, {out['skipped']} already done{others}, "
          f"{len(out['failed'])} failed -> {out['folder']}/leaderboard.md")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from mfgbench.report import write_report
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"no results folder {folder}")
    suites = [folder] if any((p / "summary.json").exists() for p in folder.iterdir() if p.is_dir()) else \
        [p for p in sorted(folder.iterdir()) if p.is_dir() and any((q / "summary.json").exists()
                                                                   for q in p.iterdir() if q.is_dir())]
    if not suites:
        raise UsageError(f"{folder} holds no finished trial")
    for sub in suites:
        write_report(sub, quiet=False, manifest=False if args.all else None)
    return 0


def cmd_tune(args) -> int:
    """Search a learner's config space on a game or a family (mfgbench.bench.tune)."""
    from pathlib import Path

    from mfgbench.bench.suite import _check_names, plays
    from mfgbench.bench.tune import tune, write_tuned
    from mfgbench.games import list_games, spec
    try:
        _check_names([], [args.learner], "tune")
        if args.games:
            games = _csv(args.games, what="game")
            _check_names(games, [], "--games")
        elif args.family:
            games = [g for g in list_games() if spec(g).kind == args.family and plays(args.learner, g)]
        else:
            raise UsageError("tune: give --games or --family")
        space = None
        if args.space:
            text = Path(args.space).read_text() if Path(args.space).suffix.lower() in (".toml", ".json") \
                else args.space
            try:
                space = json.loads(text)
            except ValueError:
                import tomllib
                space = tomllib.loads(text)
        command = "python -m mfgbench " + shlex.join(args.argv)

        def progress(number, config, value):
            if not args.quiet:
                print(f"trial {number}: {value:.4g}  {config}", flush=True)

        entry = tune(args.learner, games, family=args.family, space=space, trials=args.trials,
                     iterations=args.budget, seeds=_csv(args.seeds, int, "seed"), sampler_seed=args.sampler_seed,
                     timeout=args.timeout, command=command, progress=progress)
        write_tuned(args.out, entry, merge=not args.replace)
    except ValueError as exc:   # TuneError, SuiteError, a malformed space or tuned file
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"tune: {exc}") from None
    print(f"tune {args.learner}: best {entry['best_value']:.4g} with {entry['config']} -> {args.out}")
    return 0


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mfgbench", description="Benchmark MFG learners against exact equilibria.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="every registered game with a one-line description")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("evaluate", help="exact exploitability of a policy")
    p.add_argument("game")
    p.add_argument("--param", action="append", metavar="K=V", help="game parameter (repeatable)")
    p.add_argument("--policy", default="uniform", help="'uniform' or a .npz file (keys policy_0, policy_1, ...)")
    p.add_argument("--discretize", action="append", metavar="K=V",
                   help="continuous games: grid of the discretization the policy plays (nx, nt, n_actions, "
                        "max_speed; default: the grid `run` uses)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reference", help="certified reference equilibrium (finite) or PDE solution (continuous)")
    p.add_argument("game")
    p.add_argument("--param", action="append", metavar="K=V")
    p.add_argument("--tol", type=float, default=None, help="tolerance (default 1e-8 finite, 1e-10 PDE)")
    p.add_argument("--nx", type=int, default=None, help="PDE grid points in space (continuous games)")
    p.add_argument("--nt", type=int, default=None, help="PDE time steps (continuous games)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("run", help="the main job: run a suite of trials, write results and the report")
    p.add_argument("--suite", default="standard", help="quick | standard | paper | a suite file (.toml/.json)")
    p.add_argument("--games", help="comma-separated game ids to keep")
    p.add_argument("--learners", help="comma-separated learner names to keep")
    p.add_argument("--seeds", help="comma-separated seeds (replace the suite's)")
    p.add_argument("--budget", type=int, help="iterations per trial (replace the suite's)")
    p.add_argument("--out", default="results", help="results folder (default results/)")
    p.add_argument("--workers", type=int, help="local worker processes (default: the core count)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--dask-local", type=int, metavar="N", help="start a local Dask cluster of N workers")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse trials finished earlier with the same spec and code (default on)")
    p.add_argument("--retry-failed", action=argparse.BooleanOptionalAction, default=True,
                   help="run trials that failed earlier again (default on)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tuned", help="tuned file (python -m mfgbench tune) for the trials tagged tuned")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tune", help="search a learner's config space on a game or a family (needs optuna)")
    p.add_argument("learner")
    p.add_argument("--games", help="comma-separated game ids")
    p.add_argument("--family", choices=["finite", "stationary"], help="every registered game of this kind")
    p.add_argument("--space", help="search space: a .toml/.json file or a JSON string (default: the learner's)")
    p.add_argument("--trials", type=int, default=30, help="Optuna trials (default 30)")
    p.add_argument("--budget", type=int, default=100, help="iterations per run (default 100, the standard budget)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of Optuna's sampler")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--out", default="tuned.toml", help="tuned file to write (default tuned.toml)")
    p.add_argument("--replace", action="store_true", help="overwrite the file instead of merging the entry")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("report", help="write leaderboard and figures for a results folder")
    p.add_argument("folder", nargs="?", default="results", help="a suite folder or a folder of suites")
    p.add_argument("--all", action="store_true",
                   help="show every trial folder, not only the trials of the last run (its manifest.json)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except UsageError as exc:
        print(f"mfgbench: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"mfgbench: error: out of memory ({exc or 'the request is too large for this machine'})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mfgbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
