"""The in-memory catalogue's categories: each name's code (the codes the category_code
column and the priors use, given in order of first appearance, never reused), and the
other categories the shop's catalogue lists each product in."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reviewrank.service.domain.values import MORE_SEPARATOR

NO_CATEGORY = -1


class CategoryCodes:
    """Not thread-safe: the Catalogue's lock guards it."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []  # indexed by code (append-only)
        self._more: dict[int, tuple[int, ...]] = {}  # idx -> codes of its other categories

    def code(self, name: str) -> int:
        """The name's code, given now if it has none; NO_CATEGORY for ""."""
        if not name:
            return NO_CATEGORY
        code = self.codes.get(name)
        if code is None:
            code = len(self.names)
            self.codes[name] = code
            self.names.append(name)
        return code

    def reset(self, names: list[str], more: dict[int, str]) -> None:
        """Starts again from these names (codes in order) and other categories."""
        self.names = list(names)
        self.codes = {name: code for code, name in enumerate(self.names)}
        self._more = {}
        for idx, text in more.items():
            self.set_more(idx, text)

    def set_more(self, idx: int, text: str) -> None:
        """A product's other categories, as its row holds them (ProductRow.more_categories)."""
        if text:
            self._more[idx] = tuple(self.code(name) for name in text.split(MORE_SEPARATOR))
        else:
            self._more.pop(idx, None)

    def more_codes(self, idx: int) -> tuple[int, ...]:
        """The codes of a product's other categories."""
        return self._more.get(idx, ())

    def more_of(self, idx: int) -> tuple[str, ...]:
        return tuple(self.names[c] for c in self._more.get(idx, ()))

    def more_texts(self) -> dict[int, str]:
        """idx -> other categories as a row holds them, for every product that has some."""
        return {
            idx: MORE_SEPARATOR.join(self.names[c] for c in codes)
            for idx, codes in self._more.items()
        }

    def members(self) -> dict[int, npt.NDArray[np.int64]]:
        """Category code -> the snapshot positions (idx - 1) of the products listed in it
        besides their own category."""
        members: dict[int, list[int]] = {}
        for idx, codes in self._more.items():
            for code in codes:
                members.setdefault(code, []).append(idx - 1)
        return {code: np.array(rows, dtype=np.int64) for code, rows in members.items()}
