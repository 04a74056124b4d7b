"""floor_contact: floor objects with hidden or thin bases, stacked objects and what is not a support."""

from __future__ import annotations

import numpy as np

from sceneforge.shape.base import floor_contact


def slab(x: tuple[float, float], y: tuple[float, float], z: tuple[float, float], n: int = 400,
         seed: int = 0) -> np.ndarray:
    """(n, 3) points uniform in the box x * y * z (metres)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*x, n), rng.uniform(*y, n), rng.uniform(*z, n)])


TABLE_TOP = slab((-0.6, 0.6), (0.72, 0.75), (-0.4, 0.4))  # a table seen from above: only its top


def test_an_object_reaching_the_floor_stands_on_it():
    contact = floor_contact(slab((0, 0.5), (0.0, 0.9), (0, 0.4)), [])
    assert contact.on_floor and contact.bottom == 0.0 and abs(contact.top - 0.9) < 0.02


def test_a_table_whose_legs_are_not_seen_stands_on_the_floor():
    contact = floor_contact(TABLE_TOP, [])
    assert contact.on_floor and contact.bottom == 0.0 and contact.support_id is None
    floating = floor_contact(TABLE_TOP, [], hidden_base=False)
    assert not floating.on_floor and abs(floating.bottom - 0.72) < 0.01


def test_a_hidden_base_that_would_make_the_object_too_tall_is_not_believed():
    """A book seen at desk height with nothing seen under it: reaching down to the floor it would be
    0.75 m tall, more than ``max_height``, so its bottom is its lowest visible point."""
    book = slab((-0.1, 0.1), (0.72, 0.75), (-0.1, 0.1), seed=7)
    assert floor_contact(book, [], max_height=0.8).on_floor
    contact = floor_contact(book, [], max_height=0.12)
    assert not contact.on_floor and contact.support_id is None and abs(contact.bottom - 0.72) < 0.01
    # the desk top around the book is hidden but for 3 points: too few to lift a table off the
    # floor, enough to seat a book that cannot reach the floor
    desk = np.vstack([slab((-0.12, 0.12), (0.69, 0.70), (-0.12, 0.12), n=3, seed=8),
                      slab((1.0, 1.6), (0.69, 0.70), (-0.4, 0.4), seed=9)])
    assert floor_contact(book, [(4, desk)], max_height=0.8).on_floor
    seated = floor_contact(book, [(4, desk)], max_height=0.12)
    assert seated.support_id == 4 and abs(seated.bottom - 0.70) < 0.01
    # no point of the desk under the book, only in front of it (its top hidden behind the edge)
    front = slab((-0.5, 0.5), (0.68, 0.70), (0.2, 0.35), seed=10)
    assert floor_contact(book, [(5, front)], max_height=0.8).on_floor
    assert floor_contact(book, [(5, front)], max_height=0.12, support_reach_m=0.1).support_id is None
    reached = floor_contact(book, [(5, front)], max_height=0.12)
    assert reached.support_id == 5 and abs(reached.bottom - 0.70) < 0.01


def test_a_lamp_shade_above_a_table_stands_on_the_table_top():
    shade = slab((-0.1, 0.1), (1.0, 1.1), (-0.1, 0.1), seed=1)  # the stem is too thin to be seen
    contact = floor_contact(shade, [(3, TABLE_TOP)])
    assert not contact.on_floor and contact.support_id == 3
    assert abs(contact.bottom - 0.75) < 0.01 and abs(contact.top - 1.1) < 0.01


def test_the_highest_surface_under_the_object_is_its_support():
    shelf_board = slab((-0.3, 0.3), (0.9, 0.92), (-0.3, 0.3), seed=2)
    book = slab((-0.1, 0.1), (0.92, 0.95), (-0.1, 0.1), seed=3)
    contact = floor_contact(book, [(1, TABLE_TOP), (2, shelf_board)])
    assert contact.support_id == 2 and abs(contact.bottom - 0.92) < 0.01


def test_objects_that_are_not_under_it_or_too_small_are_no_support():
    beside = slab((0.8, 1.4), (0.0, 0.5), (-0.3, 0.3), seed=4)  # a cabinet next to the table
    assert floor_contact(TABLE_TOP, [(5, beside)]).on_floor
    pot = slab((-0.1, 0.1), (0.0, 0.4), (-0.1, 0.1), seed=5)  # under the table, but far narrower than it
    assert floor_contact(TABLE_TOP, [(6, pot)]).on_floor
    above = slab((-0.8, 0.8), (1.2, 1.25), (-0.5, 0.5), seed=6)  # a wider slab over the table: not under it
    assert floor_contact(TABLE_TOP, [(7, above)]).on_floor
