"""The ``reviewrank evaluate`` command: held-out evaluation of the ranking estimators.

Reads the reviews data set, runs ranking.evaluation over random kept/hidden splits, prints
the markdown table and draws a PNG: weighted RMSE against the kept fraction, and RMSE and
weighted pairwise accuracy against the fixed prior strength m with the fitted (auto) prior
marked for every kept fraction.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from reviewrank.ranking import evaluation, integrity_evaluation, signals_evaluation
from reviewrank.ranking.evaluation import EvaluationReport, MethodResult
from reviewrank.ranking.quality import long_tail_resample
from reviewrank.ranking.simulation import simulate_reviews
from reviewrank.service.app.analyzers import analyzer_for
from reviewrank.service.app.settings import DATA_DIR
from reviewrank.service.cli.dataset import REVIEWS_ZIP, read_reviews

DEFAULT_PLOT = Path("docs/evaluation.png")
Number = TypeVar("Number", int, float)
SIMULATED_SPLITS = 3  # random splits of the simulated history (30,000 products: slower)


def _comma_separated(text: str, parse: Callable[[str], Number], noun: str) -> tuple[Number, ...]:
    """The values of a comma-separated argument (empty parts skipped)."""
    try:
        return tuple(parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of {noun}: {text!r}") from exc


def _fractions(text: str) -> tuple[float, ...]:
    values = _comma_separated(text, float, "numbers")
    if not values or not all(0.0 < v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"fractions must be in (0, 1), got {text!r}")
    return values


def _sizes(text: str) -> tuple[int, ...]:
    values = _comma_separated(text, int, "counts")
    if not values or not all(1 <= v <= 100_000 for v in values):
        raise argparse.ArgumentTypeError(f"counts must be 1 to 100,000: {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the ``evaluate`` subcommand, handled by :func:`run`."""
    parser = subparsers.add_parser(
        "evaluate", help="evaluate the star/like estimators on held-out reviews"
    )
    parser.add_argument("--data", type=Path, default=REVIEWS_ZIP, help="reviews CSV zip")
    parser.add_argument(
        "--splits",
        type=_positive_int,
        help=f"random splits per kept fraction (default {evaluation.DEFAULT_SPLITS}; "
        f"{SIMULATED_SPLITS} with --simulated)",
    )
    parser.add_argument(
        "--fractions",
        type=_fractions,
        default=evaluation.DEFAULT_FRACTIONS,
        help="kept fractions of the reviews, comma-separated (default 0.05,0.1,0.3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--plot", type=Path, help=f"PNG to write (make evaluate writes {DEFAULT_PLOT})"
    )
    parser.add_argument(
        "--long-tail",
        action="store_true",
        help="evaluate on a long-tailed resample of the reviews (each product keeps "
        "1 + floor(Pareto(1.2)) of them: most one to three, as real catalogues)",
    )
    parser.add_argument(
        "--simulated",
        action="store_true",
        help="evaluate on a simulated review history whose products arrive over time "
        "(ranking/simulation.py): a time-ordered split (the first reviews kept), then "
        "random splits of the same reviews",
    )
    parser.add_argument(
        "--signals",
        action="store_true",
        help="evaluate the signals beyond stars instead: the reviews' texts scored as "
        "comments (sentiment against stars), and polls simulated from the stars "
        "(ranking/signals_evaluation.py)",
    )
    parser.add_argument(
        "--integrity",
        action="store_true",
        help="run the attack benchmark instead: the reviews given a made-up honest history, "
        "shilling and brigading injected, each target's rank with and without the "
        "defences (ranking/integrity_evaluation.py)",
    )
    parser.add_argument(
        "--attack-sizes",
        type=_sizes,
        default=integrity_evaluation.ATTACK_SIZES,
        help="with --integrity: the numbers k of attacking votes, comma-separated "
        "(default 10,50,200)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=integrity_evaluation.REPEATS,
        help=f"with --integrity: injections per target (default {integrity_evaluation.REPEATS})",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=DATA_DIR / "weights.toml",
        help="weights file whose default profile --integrity ranks with "
        "(default: the shipped data/weights.toml)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--table", type=Path, help="also write the markdown table here")
    parser.set_defaults(handler=run)


def load_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(product_index, stars, recommended, category_code) arrays from the data set.

    Products and categories are numbered in order of first appearance. A product gets its
    most frequent category (the first seen on a tie); an empty category is code -1.
    """
    products: dict[str, int] = {}
    categories: dict[str, int] = {}
    index: list[int] = []
    stars: list[int] = []
    recommended: list[bool] = []
    seen: dict[int, Counter[str]] = {}
    for review in read_reviews(path):
        i = products.setdefault(review.product_id, len(products))
        index.append(i)
        stars.append(review.stars)
        recommended.append(review.recommended)
        if review.category:
            seen.setdefault(i, Counter())[review.category] += 1
    codes = np.full(len(products), -1, dtype=np.int64)
    for i, counts in seen.items():
        name = counts.most_common(1)[0][0]
        codes[i] = categories.setdefault(name, len(categories))
    return (
        np.asarray(index, dtype=np.int64),
        np.asarray(stars, dtype=np.int64),
        np.asarray(recommended, dtype=np.bool_),
        codes,
    )


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.signals:
        return _run_signals(args, started)
    if args.integrity:
        return _run_integrity(args, started)
    if args.simulated:
        return _run_simulated(args, started)
    index, stars, recommended, codes = load_arrays(args.data)
    if index.size == 0:
        raise ValueError(f"{args.data}: no reviews")
    heading = ""
    if args.long_tail:
        keep = long_tail_resample(index, np.random.default_rng(args.seed))
        index, stars, recommended = index[keep], stars[keep], recommended[keep]
        kept = np.bincount(index, minlength=codes.size)
        few = float(np.mean((kept >= 1) & (kept <= 3)))
        heading = (
            f"Long-tailed resample of the reviews (seed {args.seed}): {index.size} reviews, "
            f"{few:.0%} of the products with one to three.\n\n"
        )
    report = evaluation.evaluate(
        index,
        stars,
        recommended,
        int(codes.size),
        category_code=codes,
        fractions=args.fractions,
        splits=args.splits or evaluation.DEFAULT_SPLITS,
        seed=args.seed,
    )
    return _write(
        args, heading + evaluation.format_markdown(report), asdict(report), started, report
    )


def _run_simulated(args: argparse.Namespace, started: float) -> int:
    sim = simulate_reviews(args.seed)
    counts = np.bincount(sim.product_index, minlength=sim.n_products)
    reviewed = counts > 0
    few = float(np.mean(counts[reviewed] <= 3))
    evaluate = functools.partial(
        evaluation.evaluate, sim.product_index, sim.stars, sim.recommended, sim.n_products,
        category_code=sim.category_code, fractions=args.fractions, seed=args.seed,
    )  # fmt: skip
    ordered = evaluate(times=sim.times, splits=1)
    random = evaluate(splits=args.splits or SIMULATED_SPLITS)
    table = (
        f"Simulated review history (ranking/simulation.py, seed {args.seed}): "
        f"{sim.n_products} products in {int(sim.category_code.max()) + 1} categories, "
        "arriving over time and reviewed at their own rates; "
        f"{sim.product_index.size} reviews, of {int(np.sum(reviewed))} products "
        f"({few:.0%} of them with one to three).\n\n"
        "## Time-ordered split: the first reviews kept\n\n"
        + evaluation.format_markdown(ordered)
        + "\n## Random splits of the same reviews\n\n"
        + evaluation.format_markdown(random)
    )
    return _write(args, table, asdict(ordered), started, ordered)


def _run_signals(args: argparse.Namespace, started: float) -> int:
    products: dict[str, int] = {}
    index: list[int] = []
    stars: list[int] = []
    texts: list[str] = []
    for review in read_reviews(args.data):
        index.append(products.setdefault(review.product_id, len(products)))
        stars.append(review.stars)
        texts.append(". ".join(part for part in (review.title, review.text) if part))
    analyzer = analyzer_for("en")
    scoring = time.perf_counter()
    sentiment = np.array([analyzer.score(text) if text else 0.0 for text in texts])
    scored = time.perf_counter() - scoring
    with_text = np.array([bool(text) for text in texts])
    print(
        f"scored {int(with_text.sum())} texts in {scored:.1f} s"
        f" ({with_text.sum() / max(scored, 1e-9):,.0f}/s, {analyzer.version})",
        file=sys.stderr,
    )
    fractions = args.fractions
    sentiment_report = signals_evaluation.evaluate_sentiment(
        index, stars, sentiment, with_text, len(products), fractions,
        args.splits or signals_evaluation.SENTIMENT_SPLITS, args.seed,
    )  # fmt: skip
    poll_report = signals_evaluation.evaluate_polls(index, stars, len(products), seed=args.seed)
    table = (
        "# Signals beyond stars: evidence on the reviews\n\n"
        "Generated by `make evaluate` (`reviewrank evaluate --signals`); method in"
        " ranking/signals_evaluation.py.\n\n"
        f"## Comment sentiment ({analyzer.version})\n\n"
        + signals_evaluation.format_sentiment(sentiment_report)
        + "\n## Polls simulated from the stars\n\n"
        + signals_evaluation.format_polls(poll_report)
    )
    both = {"sentiment": asdict(sentiment_report), "polls": asdict(poll_report)}
    return _write(args, table, both, started)


def _run_integrity(args: argparse.Namespace, started: float) -> int:
    from reviewrank.service.app.weights import parse_toml, read_file
    from reviewrank.service.domain.errors import InvalidArgument

    try:
        profiles = parse_toml(read_file(args.weights), str(args.weights))
    except InvalidArgument as exc:  # (a one-line error, as for the other arguments)
        raise ValueError(f"--weights {args.weights}: {exc}") from exc
    profile = profiles.profiles[profiles.default]
    index, stars, recommended, codes = load_arrays(args.data)
    if index.size == 0:
        raise ValueError(f"{args.data}: no reviews")

    def progress(step: str) -> None:
        print(f"{step}: done at {time.perf_counter() - started:.1f} s", file=sys.stderr)

    report = integrity_evaluation.evaluate_integrity(
        index, stars, recommended, codes, profile, seed=args.seed, sizes=args.attack_sizes,
        repeats=args.repeats, progress=progress,
    )  # fmt: skip
    table = (
        "# Manipulation: the attack benchmark\n\n"
        "Generated by `make bench-integrity` (`reviewrank evaluate --integrity`, seed"
        f" {args.seed}, profile `{profile.name}` of {args.weights.name}); method in"
        " ranking/integrity_evaluation.py, defences in ranking/integrity.py.\n\n"
        + integrity_evaluation.format_integrity(report)
    )
    return _write(args, table, asdict(report), started)


def _write(
    args: argparse.Namespace,
    table: str,
    results: dict[str, Any],
    started: float,
    plotted: EvaluationReport | None = None,
) -> int:
    """Prints the table and writes it, the results as JSON and (for ``plotted``) the
    plot where asked."""
    print(table, end="")
    if args.table is not None:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(table, encoding="utf-8")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    if args.plot is not None and plotted is not None:
        plot(plotted, args.plot)
    elapsed = time.perf_counter() - started
    written = [str(p) for p in (args.table, args.json, args.plot) if p is not None]
    print(f"evaluated in {elapsed:.1f} s; wrote {', '.join(written) or 'nothing'}", file=sys.stderr)
    return 0


def _jsonable(value: Any) -> Any:
    """nan -> None so that the output is strict JSON; tuples become lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def plot(report: EvaluationReport, path: Path) -> None:
    """Three panels: RMSE vs kept fraction, RMSE vs m, weighted pairwise accuracy vs m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stars = [r for r in report.methods if r.target == evaluation.TARGET_STARS]
    fixed = [r for r in stars if r.method == evaluation.fixed_method_name(r.strength)]
    fractions = sorted({r.fraction for r in report.methods})
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(fractions), 1)))

    fig, (by_fraction, rmse_by_m, accuracy_by_m) = plt.subplots(1, 3, figsize=(17, 6.2))
    fig.suptitle(
        f"Held-out evaluation: {report.reviews} reviews, {report.products} products, "
        f"{report.splits} splits per kept fraction"
    )

    strengths = sorted({r.strength for r in fixed})
    shown = [evaluation.RAW_MEAN, evaluation.DIRICHLET_MEAN]
    shown += [evaluation.fixed_method_name(m) for m in strengths if m in (1.0, 5.0, 20.0, 100.0)]
    highlighted = {
        evaluation.AUTO: {"color": "tab:grey", "marker": "s", "linestyle": "-", "linewidth": 1.5},
        evaluation.AUTO_MARGINAL: {
            "color": "tab:red",
            "marker": "D",
            "linestyle": "-",
            "linewidth": 2.0,
        },
        evaluation.AUTO_HIERARCHY: {
            "color": "black",
            "marker": "^",
            "linestyle": "-",
            "linewidth": 2.5,
        },
    }
    for name in [*shown, *highlighted]:
        rows = sorted((r for r in stars if r.method == name), key=lambda r: r.fraction)
        if not rows:
            continue
        style: dict[str, Any] = highlighted.get(
            name, {"marker": "o", "linestyle": "--", "linewidth": 1.2}
        )
        by_fraction.errorbar(
            [r.fraction for r in rows],
            [r.rmse_mean for r in rows],
            yerr=[r.rmse_std for r in rows],
            capsize=3,
            label=name,
            **style,
        )
    by_fraction.set_xscale("log")
    by_fraction.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
    by_fraction.minorticks_off()
    by_fraction.set_xlabel("kept fraction of the reviews")
    by_fraction.set_ylabel("RMSE vs hidden mean stars (weighted by hidden reviews)")
    by_fraction.set_title("Error of the star estimate")
    by_fraction.grid(alpha=0.3)
    by_fraction.legend(fontsize=8)

    for colour, fraction in zip(colours, fractions, strict=True):
        here = sorted((r for r in fixed if r.fraction == fraction), key=lambda r: r.strength)
        auto = _find(report, fraction, evaluation.AUTO_MARGINAL)
        default = _find(report, fraction, evaluation.AUTO_HIERARCHY) or auto
        for axis, metric in ((rmse_by_m, "rmse_mean"), (accuracy_by_m, "pairwise_accuracy")):
            axis.plot(
                [r.strength for r in here],
                [getattr(r, metric) for r in here],
                marker="o",
                color=colour,
                label=f"fixed m, {fraction:.0%} kept",
            )
            if default is not None:
                axis.axhline(getattr(default, metric), color=colour, linestyle=":", linewidth=1.5)
            if auto is not None:
                axis.plot(
                    [auto.strength],
                    [getattr(auto, metric)],
                    marker="*",
                    markersize=14,
                    color=colour,
                    markeredgecolor="black",
                    linestyle="none",
                    label=f"marginal (median m={auto.strength:.0f}), {fraction:.0%} kept",
                )
    for axis in (rmse_by_m, accuracy_by_m):
        axis.set_xscale("log")
        axis.set_xlabel("prior strength m (pseudo-ratings); C = kept catalogue mean")
        axis.grid(alpha=0.3)
    handles, labels = rmse_by_m.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.67, 0.0), ncol=3, fontsize=8)
    rmse_by_m.set_ylabel("RMSE vs hidden mean stars (weighted by hidden reviews)")
    rmse_by_m.set_title("Bayesian average: RMSE vs fixed m (dotted: the default prior)")
    accuracy_by_m.set_ylabel("weighted pairwise accuracy vs hidden mean stars")
    accuracy_by_m.set_title("Bayesian average: ordering vs fixed m (dotted: the default prior)")

    fig.tight_layout(rect=(0.0, 0.1, 1.0, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _find(report: EvaluationReport, fraction: float, method: str) -> MethodResult | None:
    for r in report.methods:
        if r.fraction == fraction and r.method == method:
            return r
    return None
