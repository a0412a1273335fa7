"""A simulated review history whose products arrive over time: what time-ordered splits
need and the demo reviews (which carry no times) cannot give (issue 20).

Each product i has a category c_i, a latent quality q_i = δ_{c_i} + ε_i (category offsets
δ_c ~ N(0, CATEGORY_SPREAD²), ε_i ~ N(0, QUALITY_SPREAD²)), an arrival time a_i uniform
over the horizon [0, 1), and a review rate λ_i = r·exp(POPULARITY·ε_i + RATE_SPREAD·η_i),
η_i ~ N(0, 1): rates are log-normal with a heavy tail, and better products draw more
reviews, so the popular products' means spread less than the rest's (as in real shops).
Its reviews arrive as a Poisson process over [a_i, 1): n_i ~ Poisson(λ_i·(1 − a_i)), at
uniform times. Stars follow an ordered logit, P(stars ≤ k) = logistic(θ_k − q_i), with
cut points θ giving a product of quality 0 the demo reviews' star shares (3.6, 6.7, 12.2,
21.6 and 55.9 % for one to five stars); a review recommends the product with a
probability that rises with its stars (LIKE_GIVEN_STARS). The scale r is set so that the
catalogue expects ``reviews_per_product`` reviews per product.

The first f of the reviews by time then hold many products with none yet, and the
products that arrived early with most of theirs: what a shop's history looks like at
any moment, where a random split makes every product look equally new.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STAR_SHARES = np.array([0.036, 0.067, 0.122, 0.216, 0.559])
CUT_POINTS = np.log(np.cumsum(STAR_SHARES)[:4] / (1 - np.cumsum(STAR_SHARES)[:4]))
LIKE_GIVEN_STARS = np.array([0.02, 0.10, 0.45, 0.90, 0.98])
CATEGORY_SPREAD = 0.3
QUALITY_SPREAD = 1.0
POPULARITY = 0.5
RATE_SPREAD = 1.5


@dataclass(frozen=True)
class SimulatedReviews:
    """One review per element of the first four arrays, in time order."""

    product_index: IntArray
    stars: IntArray
    recommended: BoolArray
    times: FloatArray  # in [0, 1)
    n_products: int
    category_code: IntArray  # per product


def simulate_reviews(
    seed: int, products: int = 30_000, categories: int = 20, reviews_per_product: float = 4.0
) -> SimulatedReviews:
    """A simulated review history (see the module docstring)."""
    if products < 1 or categories < 1 or not reviews_per_product > 0:
        raise ValueError("products and categories must be at least 1, reviews per product > 0")
    rng = np.random.default_rng(seed)
    category = rng.integers(0, categories, products)
    offset = rng.normal(0.0, CATEGORY_SPREAD, categories)
    own = rng.normal(0.0, QUALITY_SPREAD, products)
    quality = offset[category] + own
    arrival = rng.uniform(0.0, 1.0, products)
    shape = np.exp(POPULARITY * own + RATE_SPREAD * rng.normal(0.0, 1.0, products))
    scale = reviews_per_product * products / float(np.sum(shape * (1.0 - arrival)))
    counts = rng.poisson(scale * shape * (1.0 - arrival))
    index = np.repeat(np.arange(products, dtype=np.int64), counts)
    times = arrival[index] + rng.uniform(0.0, 1.0, index.size) * (1.0 - arrival[index])
    below = 1.0 / (1.0 + np.exp(-(CUT_POINTS[None, :] - quality[index, None])))
    stars = 1 + np.sum(rng.uniform(0.0, 1.0, (index.size, 1)) > below, axis=1)
    liked = rng.uniform(0.0, 1.0, index.size) < LIKE_GIVEN_STARS[stars - 1]
    order = np.argsort(times, kind="stable")
    return SimulatedReviews(
        product_index=index[order],
        stars=stars[order].astype(np.int64),
        recommended=liked[order],
        times=times[order],
        n_products=products,
        category_code=category.astype(np.int64),
    )
