"""Parse seed lists like `0-7` or `1,5,9-11` (inclusive ranges), as the command line takes them."""

from __future__ import annotations

from gan.errors import UserError

MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32 - 1]
MAX_COUNT = 1_000_000  # guards against typos like 0-4000000000 that would build a huge list


def _parse_one(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(
            f"bad seed {text!r} in {spec!r}: seeds are whole numbers, e.g. 0-7 or 1,5,9-11"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise UserError(f"seed {value} in {spec!r} is out of range: seeds go from 0 to {MAX_SEED}")
    return value


def parse_seeds(spec: str) -> list[int]:
    """Seeds in the order given; duplicates are kept once (first occurrence)."""
    seeds: list[int] = []
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise UserError(f"empty seed list item in {spec!r}: use e.g. 0-7 or 1,5,9-11")
    for part in parts:
        # A leading '-' is a negative number, not a range; split on a '-' after the first character.
        dash = part.find("-", 1)
        if dash < 0:
            seeds.append(_parse_one(part, spec))
            continue
        lo, hi = _parse_one(part[:dash].strip(), spec), _parse_one(part[dash + 1 :].strip(), spec)
        if hi < lo:
            raise UserError(f"seed range {part!r} runs backwards: write it as {hi}-{lo}")
        if len(seeds) + hi - lo + 1 > MAX_COUNT:
            raise UserError(f"{spec!r} asks for more than {MAX_COUNT} seeds: use a smaller range")
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))
