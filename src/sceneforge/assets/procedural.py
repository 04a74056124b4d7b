"""Procedural asset library: a registry of category generators for everyday objects and furniture.

Usage::

    from sceneforge.assets import generate_asset, CATEGORIES
    chair = generate_asset("chair", seed=3)                     # sampled parameters
    stool = generate_asset("stool", seed=3, leg_count=3)         # one parameter fixed
    chair.mesh.visual.face_colors, chair.part_ids, chair.params  # colours, part ids, parameters

Every generator builds closed parts (boxes, cylinders, convex hulls, swept tubes, revolved
profiles) in a y-up frame with the object standing on y=0, then :func:`assemble` centres the
bounding box at the origin (canonical frame: box centred, y up, front facing +z). Sizes are real
world metres drawn from the category's :class:`SizePrior`; parameters change the shape as well as
the size (leg count, thickness and taper, back height and style, arm rests, handles, lid angle...).
Everything is deterministic from the seed. Overriding a parameter keeps every other draw the same.

Conventions per category: the front faces +z (a chair's seat front, a monitor's screen, a
cabinet's doors, a bed's foot end); handles of mugs and the spout of teapots point to +x; books
lie flat with the spine on -x; laptops open with the hinge at the back (-z).

Registry: :data:`REGISTRY` maps a name to a :class:`CategorySpec` (generator, size prior, tags
``floor`` / ``stackable`` / ``support``, and ``shape_variants``: pairs of parameter overrides that
must give different shapes, used by the tests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from sceneforge.assets.base import Asset, ParamSampler, Part, SizePrior, assemble
from sceneforge.assets.primitives import (
    _Z_TO_Y, arc_points, box_from_bounds, convex_hull, cylinder_between, ellipsoid, frustum_y, hollow_vessel_profile,
    revolve_y, tapered_box_y, translate, tube)
from sceneforge.errors import InputError

# ----------------------------------------------------------------------------------------- palettes
WOOD = [(160, 110, 60), (120, 80, 45), (190, 150, 100), (90, 60, 40), (210, 180, 140), (60, 40, 30)]
METAL = [(180, 180, 185), (90, 90, 95), (40, 40, 45), (200, 170, 110), (150, 155, 160)]
FABRIC = [(70, 90, 140), (150, 60, 60), (90, 120, 80), (180, 170, 150), (60, 60, 70), (200, 140, 60),
          (120, 100, 140), (210, 205, 195)]
PAINT = [(235, 235, 230), (40, 40, 40), (200, 70, 60), (60, 110, 170), (240, 200, 80), (110, 160, 120),
         (170, 170, 175), (230, 150, 160)]
CERAMIC = [(240, 238, 230), (200, 90, 70), (60, 100, 160), (90, 150, 120), (230, 200, 90), (40, 40, 45),
           (170, 120, 90), (150, 110, 170)]
GLASS = [(170, 210, 200), (120, 170, 110), (150, 100, 50), (200, 220, 230), (90, 120, 170)]
PLASTIC = [(30, 30, 35), (230, 230, 230), (200, 50, 50), (50, 120, 200), (80, 170, 90), (250, 200, 60)]
SCREEN = [(20, 22, 28), (10, 12, 16), (30, 34, 44)]
PLANT = [(60, 130, 60), (40, 100, 50), (90, 150, 70), (50, 110, 90)]
SOIL = [(80, 55, 35), (60, 40, 25)]
PAPER = [(245, 240, 225), (235, 230, 215)]
CARDBOARD = [(190, 150, 100), (170, 130, 85), (210, 180, 130)]
BEDDING = [(240, 240, 240), (200, 210, 230), (230, 215, 200), (180, 200, 180)]

_Y90 = np.eye(4)


def _rotate_x(mesh: trimesh.Trimesh, angle_rad: float, pivot: Sequence[float]) -> trimesh.Trimesh:
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle_rad, [1, 0, 0], pivot))
    return mesh


def _rotate_y(mesh: trimesh.Trimesh, angle_rad: float, pivot: Sequence[float] = (0, 0, 0)) -> trimesh.Trimesh:
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle_rad, [0, 1, 0], pivot))
    return mesh


def _ring_y(major: float, minor: float, y: float) -> trimesh.Trimesh:
    """Closed torus lying in the x/z plane at height y."""
    ring = trimesh.creation.torus(major, minor, major_sections=24, minor_sections=8)
    ring.apply_transform(_Z_TO_Y)
    return translate(ring, (0.0, y, 0.0))


def _leg(profile: str, thickness: float, taper: float, x: float, z: float, y0: float, y1: float) -> trimesh.Trimesh:
    """A vertical leg, ``thickness`` at the top and ``thickness * taper`` at the floor."""
    if profile == "round":
        return frustum_y(thickness * taper / 2, thickness / 2, y1 - y0, y0, (x, z), sections=10)
    bottom = (thickness * taper, thickness * taper)
    return tapered_box_y(bottom, (thickness, thickness), y0, y1, (x, z))


def _corner_positions(half_w: float, half_d: float, inset: float, count: int, elliptic: bool) -> list[tuple[float, float]]:
    """x/z positions of ``count`` legs inside a rectangle or ellipse of half sizes (half_w, half_d)."""
    a, b = max(half_w - inset, 0.01), max(half_d - inset, 0.01)
    if count == 4 and not elliptic:
        return [(sx * a, sz * b) for sx in (-1, 1) for sz in (-1, 1)]
    angles = np.radians([45, 135, 225, 315]) if count == 4 else np.radians([90, 210, 330])
    return [(a * np.cos(t), b * np.sin(t)) for t in angles]


# ------------------------------------------------------------------------------------- furniture
def _table(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    top_shape = p.choice("top_shape", ["rectangle", "ellipse"])
    top_t = p.uniform("top_thickness", 0.02, 0.06)
    base = p.choice("base", ["four_legs", "three_legs", "pedestal"])
    leg_t = p.uniform("leg_thickness", 0.03, 0.08)
    profile = p.choice("leg_profile", ["square", "round"])
    taper = p.uniform("leg_taper", 0.5, 1.0)
    inset = p.uniform("leg_inset", 0.02, 0.12)
    apron = p.flag("apron", 0.5)
    top_c = p.colour("top_colour", WOOD + PAINT[:2])
    leg_c = p.colour("leg_colour", WOOD + METAL)
    if top_shape == "ellipse":
        top = frustum_y(1.0, 1.0, top_t, 0.0, sections=32)
        top.apply_scale([w / 2, 1.0, d / 2])
        top = translate(top, (0, h - top_t, 0))
    else:
        top = box_from_bounds((-w / 2, h - top_t, -d / 2), (w / 2, h, d / 2))
    parts = [Part("top", top, top_c)]
    y_leg = h - top_t
    if base == "pedestal":
        r = max(leg_t, 0.04)
        parts.append(Part("leg", frustum_y(r * taper, r, y_leg - 0.03, 0.03, sections=16), leg_c))
        foot_r = 0.3 * min(w, d)
        parts.append(Part("foot", frustum_y(foot_r, foot_r * 0.8, 0.03, 0.0, sections=24), leg_c))
        return parts
    count = 4 if base == "four_legs" else 3
    margin = inset + leg_t / 2
    for x, z in _corner_positions(w / 2, d / 2, margin, count, top_shape == "ellipse" or count == 3):
        parts.append(Part("leg", _leg(profile, leg_t, taper, x, z, 0.0, y_leg), leg_c))
    if apron and count == 4 and top_shape == "rectangle":
        ah, at = 0.08, 0.02
        a, b = w / 2 - margin, d / 2 - margin
        parts.append(Part("apron", box_from_bounds((-a, y_leg - ah, b - at / 2), (a, y_leg, b + at / 2)), top_c))
        parts.append(Part("apron", box_from_bounds((-a, y_leg - ah, -b - at / 2), (a, y_leg, -b + at / 2)), top_c))
        parts.append(Part("apron", box_from_bounds((a - at / 2, y_leg - ah, -b), (a + at / 2, y_leg, b)), top_c))
        parts.append(Part("apron", box_from_bounds((-a - at / 2, y_leg - ah, -b), (-a + at / 2, y_leg, b)), top_c))
    return parts


def _desk(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    top_t = p.uniform("top_thickness", 0.02, 0.05)
    support = p.choice("support", ["legs", "panels"])
    leg_t = p.uniform("leg_thickness", 0.03, 0.06)
    drawer_unit = p.choice("drawer_unit", ["none", "left", "right"])
    drawers = p.integer("drawer_count", 2, 4)
    modesty = p.flag("modesty_panel", 0.5)
    top_c = p.colour("top_colour", WOOD + PAINT[:2])
    frame_c = p.colour("frame_colour", METAL + WOOD)
    handle_c = p.colour("handle_colour", METAL)
    y0 = h - top_t
    parts = [Part("top", box_from_bounds((-w / 2, y0, -d / 2), (w / 2, h, d / 2)), top_c)]
    unit_w = min(0.4, 0.35 * w)
    if support == "legs":
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - leg_t / 2 - 0.02), sz * (d / 2 - leg_t / 2 - 0.02)
                parts.append(Part("leg", _leg("square", leg_t, 1.0, x, z, 0.0, y0), frame_c))
    else:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.01)
            parts.append(Part("panel", box_from_bounds((x - 0.01 - 0.005, 0, -d / 2 + 0.02),
                                                       (x + 0.01 - 0.005, y0, d / 2 - 0.02)), frame_c))
    if modesty:
        parts.append(Part("panel", box_from_bounds((-w / 2 + 0.05, y0 * 0.45, -d / 2 + 0.03),
                                                   (w / 2 - 0.05, y0, -d / 2 + 0.045)), frame_c))
    if drawer_unit != "none":
        side = -1 if drawer_unit == "left" else 1
        x_in, x_out = side * (w / 2 - 0.03 - unit_w), side * (w / 2 - 0.03)
        lo, hi = min(x_in, x_out), max(x_in, x_out)
        parts.append(Part("drawer_unit", box_from_bounds((lo, 0.02, -d / 2 + 0.04), (hi, y0, d / 2 - 0.04)), top_c))
        step = (y0 - 0.04) / drawers
        for i in range(drawers):
            ya, yb = 0.03 + i * step + 0.005, 0.03 + (i + 1) * step - 0.005
            parts.append(Part("drawer", box_from_bounds((lo + 0.01, ya, d / 2 - 0.04), (hi - 0.01, yb, d / 2 - 0.025)), top_c))
            yc = (ya + yb) / 2
            parts.append(Part("handle", box_from_bounds(((lo + hi) / 2 - 0.05, yc - 0.008, d / 2 - 0.025),
                                                        ((lo + hi) / 2 + 0.05, yc + 0.008, d / 2 - 0.01)), handle_c))
    return parts


def _chair(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    seat_h = p.uniform("seat_height", 0.40, 0.50)
    seat_t = p.uniform("seat_thickness", 0.02, 0.07)
    base = p.choice("base", ["four_legs", "swivel"])
    leg_t = p.uniform("leg_thickness", 0.025, 0.06)
    profile = p.choice("leg_profile", ["square", "round"])
    taper = p.uniform("leg_taper", 0.6, 1.0)
    back_style = p.choice("back_style", ["solid", "slats", "frame"])
    slats = p.integer("back_slats", 2, 5)
    tilt = p.uniform("back_tilt_deg", 0.0, 15.0)
    back_t = p.uniform("back_thickness", 0.02, 0.05)
    arms = p.flag("arm_rests", 0.3)
    frame_c = p.colour("frame_colour", WOOD + METAL)
    seat_c = p.colour("seat_colour", FABRIC + WOOD)
    back_c = p.colour("back_colour", FABRIC + WOOD)
    seat_lo = seat_h - seat_t
    d = d - (h - seat_h) * np.sin(np.radians(tilt))  # seat depth: the tilted back leans this far behind it
    parts = [Part("seat", box_from_bounds((-w / 2, seat_lo, -d / 2), (w / 2, seat_h, d / 2)), seat_c)]
    if base == "four_legs":
        m = leg_t / 2 + 0.01
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(Part("leg", _leg(profile, leg_t, taper, sx * (w / 2 - m), sz * (d / 2 - m), 0.0, seat_lo), frame_c))
    else:
        star_r = 0.5 * min(w, d) - 0.03
        parts.append(Part("leg", frustum_y(0.025, 0.025, seat_lo - 0.06, 0.06, sections=12), frame_c))
        for k in range(5):
            a = 2 * np.pi * k / 5
            tip = np.array([star_r * np.cos(a), 0.06, star_r * np.sin(a)])
            parts.append(Part("leg", cylinder_between(np.array([0, 0.07, 0]), tip, 0.015, 8), frame_c))
            parts.append(Part("wheel", ellipsoid((0.025, 0.025, 0.025), (tip[0], 0.025, tip[2])), METAL[2]))
    back_h = h - seat_h
    zb0, zb1 = -d / 2, -d / 2 + back_t
    back: list[trimesh.Trimesh] = []
    if back_style == "solid":
        back.append(box_from_bounds((-w / 2, seat_h, zb0), (w / 2, h, zb1)))
    else:
        post = max(leg_t, 0.03)
        back.append(box_from_bounds((-w / 2, seat_h, zb0), (-w / 2 + post, h, zb1)))
        back.append(box_from_bounds((w / 2 - post, seat_h, zb0), (w / 2, h, zb1)))
        rail = min(0.08, 0.25 * back_h)
        back.append(box_from_bounds((-w / 2 + post, h - rail, zb0), (w / 2 - post, h, zb1)))
        if back_style == "slats":
            inner = w - 2 * post
            slat_w = inner / (2 * slats + 1)
            for i in range(slats):
                x0 = -w / 2 + post + slat_w * (2 * i + 1)
                back.append(box_from_bounds((x0, seat_h, zb0 + 0.003), (x0 + slat_w, h - rail, zb1 - 0.003)))
        else:
            yc = seat_h + 0.45 * back_h
            back.append(box_from_bounds((-w / 2 + post, yc - rail / 2, zb0), (w / 2 - post, yc + rail / 2, zb1)))
    for mesh in back:
        parts.append(Part("back", _rotate_x(mesh, -np.radians(tilt), (0, seat_h, zb0)), back_c))
    if arms:
        arm_y = seat_h + 0.2
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.025)
            parts.append(Part("arm", box_from_bounds((x - 0.02, seat_h, d / 2 - 0.06), (x + 0.02, arm_y, d / 2 - 0.02)), frame_c))
            parts.append(Part("arm", box_from_bounds((x - 0.025, arm_y, -d / 2 + back_t), (x + 0.025, arm_y + 0.025, d / 2)), frame_c))
    return parts


def _stool(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    seat_shape = p.choice("seat_shape", ["round", "square"])
    seat_t = p.uniform("seat_thickness", 0.02, 0.06)
    legs = p.integer("leg_count", 3, 4)
    leg_t = p.uniform("leg_thickness", 0.02, 0.045)
    splay = p.uniform("leg_splay", 0.0, 0.08)
    footrest = p.flag("footrest", 0.5)
    seat_c = p.colour("seat_colour", WOOD + FABRIC)
    leg_c = p.colour("leg_colour", WOOD + METAL)
    r = w / 2
    y0 = h - seat_t
    if seat_shape == "round":
        seat = frustum_y(r, r, seat_t, y0, sections=24)
    else:
        seat = box_from_bounds((-r, y0, -r), (r, h, r))
    parts = [Part("seat", seat, seat_c)]
    r_top = r * 0.7
    r_floor = r_top + splay
    for k in range(legs):
        a = 2 * np.pi * k / legs + np.pi / 4
        top = np.array([r_top * np.cos(a), y0 + 0.005, r_top * np.sin(a)])
        foot = np.array([r_floor * np.cos(a), 0.0, r_floor * np.sin(a)])
        leg = cylinder_between(foot, top, leg_t / 2, 10)
        # trim to the floor: a slanted cylinder's rim dips below y=0; lift it so its lowest point is 0
        leg.apply_translation((0, -leg.bounds[0, 1], 0))
        parts.append(Part("leg", leg, leg_c))
    if footrest:
        y = 0.3 * h
        t = y / max(y0, 1e-6)
        ring_r = r_floor + (r_top - r_floor) * t
        parts.append(Part("footrest", _ring_y(ring_r, leg_t * 0.4, y), leg_c))
    return parts


def _bench(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w = p.uniform("width", prior.low[0], prior.high[0])
    d = p.uniform("depth", prior.low[2], prior.high[2])
    seat_h = p.uniform("seat_height", 0.38, 0.5)
    seat_t = p.uniform("seat_thickness", 0.03, 0.07)
    support = p.choice("support", ["four_legs", "panels"])
    leg_t = p.uniform("leg_thickness", 0.04, 0.08)
    backrest = p.flag("backrest", 0.4)
    back_h = p.uniform("back_height", 0.3, 0.42)
    slat_count = p.integer("seat_slats", 1, 4)
    seat_c = p.colour("seat_colour", WOOD)
    frame_c = p.colour("frame_colour", METAL + WOOD)
    y0 = seat_h - seat_t
    parts = []
    gap = 0.01 if slat_count > 1 else 0.0
    slat_d = (d - gap * (slat_count - 1)) / slat_count
    for i in range(slat_count):
        z0 = -d / 2 + i * (slat_d + gap)
        parts.append(Part("seat", box_from_bounds((-w / 2, y0, z0), (w / 2, seat_h, z0 + slat_d)), seat_c))
    if support == "four_legs":
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(Part("leg", _leg("square", leg_t, 1.0, sx * (w / 2 - leg_t), sz * (d / 2 - leg_t / 2 - 0.01), 0, y0), frame_c))
    else:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.08)
            parts.append(Part("leg", box_from_bounds((x - leg_t / 2, 0, -d / 2 + 0.02), (x + leg_t / 2, y0, d / 2 - 0.02)), frame_c))
    if backrest:
        zb = -d / 2
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.08)
            parts.append(Part("back_support", box_from_bounds((x - 0.02, seat_h, zb), (x + 0.02, seat_h + back_h, zb + 0.03)), frame_c))
        parts.append(Part("back", box_from_bounds((-w / 2, seat_h + back_h * 0.45, zb - 0.005),
                                                  (w / 2, seat_h + back_h, zb + 0.025)), seat_c))
    return parts


def _sofa(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    seat_h = p.uniform("seat_height", 0.38, 0.48)
    cushions = p.integer("seat_cushions", 1, 3)
    arm_style = p.choice("arm_style", ["none", "low", "high"])
    arm_w = p.uniform("arm_width", 0.08, 0.25)
    back_t = p.uniform("back_thickness", 0.12, 0.25)
    feet = p.flag("feet", 0.6)
    feet_h = p.uniform("feet_height", 0.04, 0.12)
    body_c = p.colour("body_colour", FABRIC)
    cushion_c = p.colour("cushion_colour", FABRIC)
    feet_c = p.colour("feet_colour", WOOD + METAL)
    base_y = feet_h if feet else 0.0
    cushion_t = min(0.15, 0.45 * (seat_h - base_y))
    aw = arm_w if arm_style != "none" else 0.0
    parts = [Part("base", box_from_bounds((-w / 2 + aw, base_y, -d / 2), (w / 2 - aw, seat_h - cushion_t, d / 2)), body_c),
             Part("back", box_from_bounds((-w / 2 + aw, base_y, -d / 2), (w / 2 - aw, h, -d / 2 + back_t)), body_c)]
    inner_w = w - 2 * aw
    cw = inner_w / cushions
    for i in range(cushions):
        x0 = -w / 2 + aw + i * cw
        parts.append(Part("cushion", box_from_bounds((x0 + 0.005, seat_h - cushion_t, -d / 2 + back_t),
                                                     (x0 + cw - 0.005, seat_h, d / 2)), cushion_c))
    if arm_style != "none":
        arm_top = seat_h + 0.18 if arm_style == "low" else h - 0.08
        for sx in (-1, 1):
            x_out = sx * w / 2
            x_in = sx * (w / 2 - aw)
            lo, hi = min(x_out, x_in), max(x_out, x_in)
            parts.append(Part("arm", box_from_bounds((lo, base_y, -d / 2), (hi, arm_top, d / 2)), body_c))
    if feet:
        for sx in (-1, 1):
            for sz in (-1, 1):
                x, z = sx * (w / 2 - 0.06), sz * (d / 2 - 0.06)
                parts.append(Part("foot", frustum_y(0.02, 0.03, feet_h, 0.0, (x, z), sections=10), feet_c))
    return parts


def _bed(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w = p.uniform("width", prior.low[0], prior.high[0])
    d = p.uniform("depth", prior.low[2], prior.high[2])
    frame_h = p.uniform("frame_height", 0.15, 0.35)
    mattress_t = p.uniform("mattress_thickness", 0.15, 0.3)
    head_h = p.uniform("headboard_height", 0.3, 0.7)
    head_style = p.choice("headboard_style", ["panel", "posts"])
    footboard = p.flag("footboard", 0.4)
    pillows = p.integer("pillow_count", 1, 2)
    legs = p.flag("legs", 0.5)
    leg_h = p.uniform("leg_height", 0.05, 0.2)
    frame_c = p.colour("frame_colour", WOOD + PAINT[:2] + FABRIC[:3])
    sheet_c = p.colour("sheet_colour", BEDDING)
    pillow_c = p.colour("pillow_colour", BEDDING)
    y_frame = leg_h if legs else 0.0
    top_frame = y_frame + frame_h
    parts = [Part("frame", box_from_bounds((-w / 2, y_frame, -d / 2 + 0.05), (w / 2, top_frame, d / 2)), frame_c),
             Part("mattress", box_from_bounds((-w / 2 + 0.02, top_frame, -d / 2 + 0.06), (w / 2 - 0.02, top_frame + mattress_t, d / 2 - 0.02)), sheet_c)]
    head_top = top_frame + mattress_t + head_h
    if head_style == "panel":
        parts.append(Part("headboard", box_from_bounds((-w / 2, 0.0, -d / 2), (w / 2, head_top, -d / 2 + 0.05)), frame_c))
    else:
        for sx in (-1, 1):
            parts.append(Part("headboard", box_from_bounds((sx * w / 2 - 0.03 - sx * 0.03, 0.0, -d / 2), (sx * w / 2 + 0.03 - sx * 0.03, head_top, -d / 2 + 0.05)), frame_c))
        for yy in (head_top - 0.08, top_frame + mattress_t + 0.05):
            parts.append(Part("headboard", box_from_bounds((-w / 2 + 0.06, yy, -d / 2 + 0.01), (w / 2 - 0.06, yy + 0.05, -d / 2 + 0.04)), frame_c))
    if footboard:
        parts.append(Part("footboard", box_from_bounds((-w / 2, 0.0, d / 2 - 0.04), (w / 2, top_frame + mattress_t + 0.1, d / 2)), frame_c))
    if legs:
        for sx in (-1, 1):
            z = d / 2 - 0.06 if not footboard else d / 2 - 0.1
            parts.append(Part("leg", _leg("square", 0.05, 1.0, sx * (w / 2 - 0.05), z, 0.0, y_frame), frame_c))
    pw = (w - 0.1) / pillows
    for i in range(pillows):
        cx = -w / 2 + 0.05 + pw * (i + 0.5)
        parts.append(Part("pillow", ellipsoid((pw * 0.42, 0.06, 0.18), (cx, top_frame + mattress_t + 0.05, -d / 2 + 0.3)), pillow_c))
    return parts


def _shelf(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    shelves = p.integer("shelf_count", 2, 6)
    board_t = p.uniform("board_thickness", 0.015, 0.03)
    back_panel = p.flag("back_panel", 0.6)
    sides = p.choice("sides", ["panels", "posts"])
    plinth = p.flag("plinth", 0.5)
    wood_c = p.colour("board_colour", WOOD + PAINT[:2])
    frame_c = p.colour("side_colour", WOOD + METAL)
    parts = []
    y_bottom = 0.06 if plinth else 0.0
    if sides == "panels":
        for sx in (-1, 1):
            x = sx * (w / 2 - board_t / 2)
            parts.append(Part("side", box_from_bounds((x - board_t / 2, 0.0, -d / 2), (x + board_t / 2, h, d / 2)), frame_c))
        inner = w / 2 - board_t
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(Part("side", _leg("square", 0.03, 1.0, sx * (w / 2 - 0.015), sz * (d / 2 - 0.015), 0.0, h), frame_c))
        inner = w / 2
    for i in range(shelves):
        y = y_bottom + (h - y_bottom - board_t) * i / (shelves - 1)
        parts.append(Part("board", box_from_bounds((-inner, y, -d / 2), (inner, y + board_t, d / 2 - 0.005)), wood_c))
    if plinth:
        parts.append(Part("plinth", box_from_bounds((-inner, 0.0, -d / 2 + 0.02), (inner, y_bottom, d / 2 - 0.03)), frame_c))
    if back_panel:
        parts.append(Part("back", box_from_bounds((-inner, y_bottom, -d / 2), (inner, h - 0.001, -d / 2 + 0.008)), wood_c))
    return parts


def _make_cabinet(fronts: Sequence[str]) -> Callable[[ParamSampler, SizePrior], list[Part]]:
    def build(p: ParamSampler, prior: SizePrior) -> list[Part]:
        w, h, d = p.dims(prior)
        front = p.choice("front", list(fronts))
        doors = p.integer("door_count", 1, 2)
        drawers = p.integer("drawer_count", 1, 5)
        handle = p.choice("handle_style", ["bar", "knob"])
        base = p.choice("base", ["plinth", "legs"])
        base_h = p.uniform("base_height", 0.04, 0.15)
        body_c = p.colour("body_colour", WOOD + PAINT)
        front_c = p.colour("front_colour", WOOD + PAINT)
        handle_c = p.colour("handle_colour", METAL)
        parts = [Part("body", box_from_bounds((-w / 2, base_h, -d / 2), (w / 2, h, d / 2 - 0.02)), body_c)]
        if base == "plinth":
            parts.append(Part("base", box_from_bounds((-w / 2 + 0.03, 0.0, -d / 2 + 0.03), (w / 2 - 0.03, base_h, d / 2 - 0.06)), body_c))
        else:
            for sx in (-1, 1):
                for sz in (-1, 1):
                    parts.append(Part("leg", _leg("round", 0.035, 0.7, sx * (w / 2 - 0.04), sz * (d / 2 - 0.06), 0.0, base_h), handle_c))
        zf0, zf1 = d / 2 - 0.02, d / 2
        panels: list[tuple[float, float, float, float]] = []  # x0, x1, y0, y1
        if front == "doors":
            dw = w / doors
            panels = [(-w / 2 + i * dw, -w / 2 + (i + 1) * dw, base_h, h) for i in range(doors)]
        else:
            dh = (h - base_h) / drawers
            panels = [(-w / 2, w / 2, base_h + i * dh, base_h + (i + 1) * dh) for i in range(drawers)]
        for i, (x0, x1, y0, y1) in enumerate(panels):
            parts.append(Part("door" if front == "doors" else "drawer",
                              box_from_bounds((x0 + 0.004, y0 + 0.004, zf0), (x1 - 0.004, y1 - 0.004, zf1)), front_c))
            if front == "doors":
                hx = x1 - 0.05 if (i % 2 == 0 and len(panels) > 1) or len(panels) == 1 else x0 + 0.05
                hx = x1 - 0.05 if i == 0 else x0 + 0.05
                hy = (y0 + y1) / 2 if h < 1.2 else base_h + 0.45 * (h - base_h)
                if handle == "bar":
                    hl = min(0.2, 0.3 * (y1 - y0))
                    parts.append(Part("handle", box_from_bounds((hx - 0.008, hy - hl / 2, zf1), (hx + 0.008, hy + hl / 2, zf1 + 0.025)), handle_c))
                else:
                    parts.append(Part("handle", ellipsoid((0.015, 0.015, 0.015), (hx, hy, zf1 + 0.01)), handle_c))
            else:
                hy = (y0 + y1) / 2
                if handle == "bar":
                    hl = min(0.25, 0.4 * (x1 - x0))
                    parts.append(Part("handle", box_from_bounds((-hl / 2, hy - 0.008, zf1), (hl / 2, hy + 0.008, zf1 + 0.025)), handle_c))
                else:
                    parts.append(Part("handle", ellipsoid((0.015, 0.015, 0.015), (0.0, hy, zf1 + 0.01)), handle_c))
        return parts
    return build


def _lamp(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)  # the width is the shade's diameter
    base_shape = p.choice("base_shape", ["disc", "square", "cone"])
    base_r = p.uniform("base_radius_fraction", 0.4, 0.9) * w / 2
    stem = p.choice("stem", ["straight", "bent"])
    stem_r = p.uniform("stem_radius", 0.006, 0.02)
    shade = p.choice("shade_shape", ["cone", "cylinder", "dome"])
    shade_r = w / 2
    shade_h = p.uniform("shade_height_fraction", 0.2, 0.4) * h
    taper = p.uniform("shade_taper", 0.4, 0.9)
    base_c = p.colour("base_colour", METAL + CERAMIC)
    shade_c = p.colour("shade_colour", FABRIC + PAPER)
    base_t = 0.03
    parts = []
    if base_shape == "square":
        base_r /= np.sqrt(2.0)  # the square's corners stay inside the shade's circle
    if base_shape == "disc":
        parts.append(Part("base", frustum_y(base_r, base_r * 0.9, base_t, 0.0, sections=24), base_c))
    elif base_shape == "square":
        parts.append(Part("base", box_from_bounds((-base_r, 0, -base_r), (base_r, base_t, base_r)), base_c))
    else:
        base_t = 0.08 * (h / 0.5)
        parts.append(Part("base", frustum_y(base_r, stem_r * 2, base_t, 0.0, sections=24), base_c))
    y_shade = h - shade_h
    top = np.array([0.0, y_shade + 0.02, 0.0])
    if stem == "straight":
        path = np.array([[0.0, base_t - 0.005, 0.0], top])
    else:
        off = min(shade_r * 0.6, 0.1)
        path = np.array([[0.0, base_t - 0.005, 0.0], [0.0, 0.55 * y_shade, 0.0], [off, 0.8 * y_shade, 0.0], [0.0, y_shade + 0.02, 0.0]])
    parts.append(Part("stem", tube(path, stem_r, 8), base_c))
    if shade == "dome":
        a = np.linspace(0, np.pi / 2, 8)
        prof = np.column_stack([shade_r * np.cos(a), shade_h * np.sin(a)])
        prof = np.vstack([[[0.0, 0.0]], prof])
        parts.append(Part("shade", translate(revolve_y(prof, 24), (0, y_shade, 0)), shade_c))
    else:
        r_top = shade_r * (taper if shade == "cone" else 1.0)
        parts.append(Part("shade", frustum_y(shade_r, r_top, shade_h, y_shade, sections=24), shade_c))
    return parts


def _screen(p: ParamSampler, prior: SizePrior, tv: bool) -> list[Part]:
    w = p.uniform("width", prior.low[0], prior.high[0])
    aspect = p.choice("aspect", [16 / 9, 16 / 10, 21 / 9] if not tv else [16 / 9, 2.0])
    thick = p.uniform("panel_thickness", 0.015, 0.05) if not tv else p.uniform("panel_thickness", 0.03, 0.08)
    bezel = p.uniform("bezel", 0.005, 0.03)
    stand = p.choice("stand", ["column", "arm"] if not tv else ["feet", "pedestal"])
    base = p.choice("base_shape", ["round", "rectangle"])
    lift = p.uniform("stand_height", 0.05, 0.15) if not tv else p.uniform("stand_height", 0.04, 0.12)
    body_c = p.colour("body_colour", [(30, 30, 32), (200, 200, 205), (60, 60, 65)])
    screen_c = p.colour("screen_colour", SCREEN, jitter=0.05)
    ph = w / aspect
    base_t = 0.015
    y0 = base_t + lift
    parts = [Part("panel", box_from_bounds((-w / 2, y0, -thick / 2), (w / 2, y0 + ph, thick / 2)), body_c),
             Part("screen", box_from_bounds((-w / 2 + bezel, y0 + bezel, thick / 2), (w / 2 - bezel, y0 + ph - bezel, thick / 2 + 0.002)), screen_c)]
    base_d = max(0.15, 2 * thick + 0.1) if not tv else 0.25
    if tv and stand == "feet":
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.12)
            parts.append(Part("stand", cylinder_between(np.array([x, y0 + 0.02, 0.0]), np.array([x + sx * 0.05, 0.01, base_d / 2]), 0.01, 8), body_c))
            parts.append(Part("stand", cylinder_between(np.array([x, y0 + 0.02, 0.0]), np.array([x + sx * 0.05, 0.01, -base_d / 2]), 0.01, 8), body_c))
            parts.append(Part("stand", box_from_bounds((x + sx * 0.05 - 0.015, 0.0, -base_d / 2 - 0.01), (x + sx * 0.05 + 0.015, 0.012, base_d / 2 + 0.01)), body_c))
        return parts
    neck_z = -thick / 2 - 0.015
    if stand == "arm":
        path = np.array([[0.0, base_t - 0.003, -base_d / 3], [0.0, y0 + 0.3 * ph, -base_d / 3], [0.0, y0 + 0.4 * ph, neck_z]])
        parts.append(Part("stand", tube(path, 0.012, 8), body_c))
    else:
        parts.append(Part("stand", box_from_bounds((-0.025, base_t - 0.002, neck_z - 0.015), (0.025, y0 + 0.4 * ph, neck_z + 0.015)), body_c))
    base_w = min(0.25, 0.4 * w)
    if base == "round":
        foot = frustum_y(base_w / 2, base_w / 2 * 0.9, base_t, 0.0, (0.0, neck_z), sections=24)
        foot.apply_scale([1.0, 1.0, 1.0])
    else:
        foot = box_from_bounds((-base_w / 2, 0.0, neck_z - base_d / 2), (base_w / 2, base_t, neck_z + base_d / 2))
    parts.append(Part("base", foot, body_c))
    return parts


def _monitor(p: ParamSampler, prior: SizePrior) -> list[Part]:
    return _screen(p, prior, tv=False)


def _tv(p: ParamSampler, prior: SizePrior) -> list[Part]:
    return _screen(p, prior, tv=True)


def _laptop(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w = p.uniform("width", prior.low[0], prior.high[0])
    d = p.uniform("depth", 0.2, 0.28)
    base_t = p.uniform("base_thickness", 0.012, 0.025)
    lid_t = p.uniform("lid_thickness", 0.004, 0.01)
    angle = p.uniform("lid_angle_deg", 80.0, 135.0)
    body_c = p.colour("body_colour", [(190, 190, 195), (40, 40, 45), (120, 120, 125)])
    key_c = p.colour("keyboard_colour", [(25, 25, 28), (210, 210, 210)])
    screen_c = p.colour("screen_colour", SCREEN, jitter=0.05)
    parts = [Part("base", box_from_bounds((-w / 2, 0.0, -d / 2), (w / 2, base_t, d / 2)), body_c),
             Part("keyboard", box_from_bounds((-w / 2 + 0.02, base_t, -d / 2 + 0.02), (w / 2 - 0.02, base_t + 0.001, -d / 2 + 0.55 * d)), key_c)]
    lid = box_from_bounds((-w / 2, base_t, -d / 2), (w / 2, base_t + lid_t, d / 2))
    scr = box_from_bounds((-w / 2 + 0.01, base_t - 0.001, -d / 2 + 0.012), (w / 2 - 0.01, base_t, d / 2 - 0.01))
    # the lid turns about the hinge (back edge of the base top) by -angle about x: its far edge rises
    pivot = (0.0, base_t, -d / 2)
    parts.append(Part("lid", _rotate_x(lid, -np.radians(angle), pivot), body_c))
    parts.append(Part("screen", _rotate_x(scr, -np.radians(angle), pivot), screen_c))
    return parts


# -------------------------------------------------------------------------------------- tableware
def _mug(p: ParamSampler, prior: SizePrior) -> list[Part]:
    _, h, d = p.dims(prior)  # the body's diameter is the depth; the width adds the handle
    taper = p.uniform("taper", 0.8, 1.25)
    wall = p.uniform("wall_thickness", 0.003, 0.007)
    handle = p.choice("handle_shape", ["round", "square"])  # the handle makes it a mug (else: cup)
    handle_size = p.uniform("handle_size", 0.5, 0.9)
    body_c = p.colour("body_colour", CERAMIC)
    handle_c = p.colour("handle_colour", CERAMIC)
    r_top = d / 2 * min(1.0, taper)  # the wider end has the drawn diameter
    r_bottom = d / 2 * min(1.0, 1.0 / taper)
    outer = np.array([[r_bottom, 0.0], [0.5 * (r_bottom + r_top), h / 2], [r_top, h]])
    parts = [Part("body", revolve_y(hollow_vessel_profile(outer, wall, wall * 1.5), 24), body_c)]
    y_hi, y_lo = 0.8 * h, 0.8 * h - handle_size * 0.7 * h
    r_hi = np.interp(y_hi, outer[:, 1], outer[:, 0]) - wall / 2
    r_lo = np.interp(y_lo, outer[:, 1], outer[:, 0]) - wall / 2
    reach = 0.3 * h * handle_size + 0.01
    if handle == "round":
        mid_y, half = (y_hi + y_lo) / 2, (y_hi - y_lo) / 2
        a = np.linspace(np.pi / 2, -np.pi / 2, 10)
        xs = np.maximum(r_hi, r_lo) + reach * np.cos(a)
        path = np.column_stack([xs, mid_y + half * np.sin(a), np.zeros_like(a)])
        path[0, 0], path[-1, 0] = r_hi, r_lo
    else:
        x_out = max(r_hi, r_lo) + reach
        path = np.array([[r_hi, y_hi, 0.0], [x_out, y_hi, 0.0], [x_out, y_lo, 0.0], [r_lo, y_lo, 0.0]])
    parts.append(Part("handle", tube(path, 0.006, 8), handle_c))
    return parts


def _cup(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    taper = p.uniform("taper", 0.6, 1.0)
    wall = p.uniform("wall_thickness", 0.002, 0.005)
    stem = p.flag("stem", 0.35)
    stem_fraction = p.uniform("stem_fraction", 0.3, 0.5)
    colour = p.colour("colour", GLASS + CERAMIC)
    r_top = w / 2
    parts = []
    y0 = 0.0
    if stem:
        y0 = stem_fraction * h
        parts.append(Part("foot", frustum_y(0.8 * r_top, 0.7 * r_top, 0.006, 0.0, sections=24), colour))
        parts.append(Part("stem", frustum_y(0.006, 0.006, y0 - 0.004, 0.004, sections=8), colour))
        bowl = np.array([[0.2 * r_top, 0.0], [0.8 * r_top, 0.3 * (h - y0)], [r_top, 0.6 * (h - y0)], [r_top * taper ** 0.3, h - y0]])
    else:
        bowl = np.array([[r_top * taper, 0.0], [r_top, h]])
    vessel = revolve_y(hollow_vessel_profile(bowl, wall, wall * 2), 24)
    parts.append(Part("body", translate(vessel, (0, y0, 0)), colour))
    return parts


def _bottle(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    shoulder = p.uniform("shoulder_fraction", 0.5, 0.8)
    neck_ratio = p.uniform("neck_radius_ratio", 0.2, 0.45)
    body = p.choice("body_shape", ["straight", "rounded", "flask"])
    cap_h = p.uniform("cap_height", 0.01, 0.03)
    body_c = p.colour("body_colour", GLASS + PLASTIC)
    cap_c = p.colour("cap_colour", METAL + PLASTIC)
    r = w / 2
    rn = neck_ratio * r
    hb = h - cap_h
    ys = shoulder * hb
    if body == "straight":
        side = [[r, 0.0], [r, ys]]
    elif body == "rounded":
        side = [[0.85 * r, 0.0], [r, 0.15 * ys], [r, 0.85 * ys], [0.95 * r, ys]]
    else:
        side = [[0.7 * r, 0.0], [r, 0.4 * ys], [0.75 * r, ys]]
    prof = [[0.0, 0.0]] + side + [[0.5 * (side[-1][0] + rn), ys + 0.12 * (hb - ys)], [rn, ys + 0.35 * (hb - ys)], [rn, hb], [0.0, hb]]
    parts = [Part("body", revolve_y(np.array(prof), 24), body_c),
             Part("cap", frustum_y(rn * 1.15, rn * 1.15, cap_h, hb - 0.002, sections=16), cap_c)]
    return parts


def _bowl(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    curve = p.uniform("wall_curvature", 1.2, 3.0)
    wall = p.uniform("wall_thickness", 0.003, 0.008)
    foot = p.flag("foot_ring", 0.5)
    base_ratio = p.uniform("base_radius_ratio", 0.3, 0.6)
    colour = p.colour("colour", CERAMIC + WOOD[:3])
    r = w / 2
    y_foot = 0.012 if foot else 0.0
    t = np.linspace(0.0, 1.0, 8)
    radii = base_ratio * r + (1 - base_ratio) * r * t ** (1.0 / curve)
    outer = np.column_stack([radii, t * (h - y_foot)])
    parts = [Part("body", translate(revolve_y(hollow_vessel_profile(outer, wall, wall * 1.5), 24), (0, y_foot, 0)), colour)]
    if foot:
        fr = base_ratio * r * 0.9
        parts.append(Part("foot", frustum_y(fr, fr, y_foot + 0.002, 0.0, sections=24), colour))
    return parts


def _plate(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    rim = p.uniform("rim_fraction", 0.1, 0.3)
    rim_style = p.choice("rim_style", ["flat", "sloped"])
    base_ratio = p.uniform("base_radius_ratio", 0.4, 0.7)
    colour = p.colour("colour", CERAMIC)
    r = w / 2
    wall = min(0.005, 0.3 * h)
    if rim_style == "flat":
        outer = np.array([[base_ratio * r, 0.0], [(1 - rim) * r, 0.7 * h], [r, h]])
    else:
        outer = np.array([[base_ratio * r, 0.0], [(1 - rim) * r, 0.3 * h], [r, h]])
    return [Part("body", revolve_y(hollow_vessel_profile(outer, wall, wall), 32), colour)]


def _vase(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    style = p.choice("style", ["amphora", "cylinder", "bulb", "trumpet"])
    neck = p.uniform("neck_ratio", 0.3, 0.7)
    wobble = p.uniform("wobble", 0.0, 0.15)
    wobble_phase = p.uniform("wobble_phase", 0.0, 2 * np.pi)
    colour = p.colour("colour", CERAMIC + GLASS)
    r = w / 2
    t = np.linspace(0.0, 1.0, 12)
    if style == "amphora":
        shape = 0.55 + 0.45 * np.sin(np.pi * np.clip(t / 0.75, 0, 1)) * (t < 0.75) + (t >= 0.75) * (neck + (1 - neck) * ((t - 0.75) / 0.25) ** 2) * 0.9
    elif style == "cylinder":
        shape = np.ones_like(t) * 0.9
    elif style == "bulb":
        shape = np.where(t < 0.6, 0.5 + 0.5 * np.sin(np.pi * t / 0.6), neck)
    else:
        shape = neck + (1 - neck) * t ** 2
    shape = shape * (1 + wobble * np.sin(2 * np.pi * t * 1.5 + wobble_phase))
    shape = np.clip(shape / shape.max(), 0.15, 1.0)
    outer = np.column_stack([r * shape, h * t])
    return [Part("body", revolve_y(hollow_vessel_profile(outer, 0.005, 0.01), 24), colour)]


def _plant_pot(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    taper = p.uniform("taper", 0.6, 1.0)
    pot_fraction = p.uniform("pot_height_fraction", 0.3, 0.6)
    rim = p.flag("rim", 0.5)
    plant = p.choice("plant", ["none", "bush", "cactus", "grass"])
    n_leaves = p.integer("leaf_count", 3, 7)
    pot_c = p.colour("pot_colour", CERAMIC + [(170, 90, 60)])
    plant_c = p.colour("plant_colour", PLANT)
    soil_c = p.colour("soil_colour", SOIL)
    leaf_rng = np.random.default_rng(p.integer("leaf_seed", 0, 2 ** 31 - 1))
    r = w / 2
    pot_h = h * (pot_fraction if plant != "none" else 1.0)
    outer = np.array([[r * taper, 0.0], [r, pot_h]])
    parts = [Part("pot", revolve_y(hollow_vessel_profile(outer, 0.008, 0.015), 24), pot_c)]
    if rim:
        parts.append(Part("pot", frustum_y(r + 0.006, r + 0.006, min(0.03, 0.15 * pot_h), pot_h - min(0.03, 0.15 * pot_h), sections=24), pot_c))
    soil_y = 0.85 * pot_h
    r_soil = np.interp(soil_y, outer[:, 1], outer[:, 0]) - 0.008
    parts.append(Part("soil", frustum_y(r_soil, r_soil, soil_y - 0.01, 0.01, sections=24), soil_c))
    top_h = h - soil_y
    if plant == "bush":  # a trunk carrying a round crown of overlapping leaf balls, all touching its centre
        crown_r = min(0.9 * r, top_h / 2)
        crown_y = h - crown_r
        if crown_y > soil_y:
            trunk = tube(np.array([[0.0, soil_y - 0.005, 0.0], [0.0, crown_y, 0.0]]), max(0.08 * r, 0.004), 8)
            parts.append(Part("trunk", trunk, SOIL[0]))
        for _ in range(n_leaves):
            direction = leaf_rng.normal(size=3)
            direction /= max(float(np.linalg.norm(direction)), 1e-9)
            rr = crown_r * leaf_rng.uniform(0.5, 0.75)
            centre = np.array([0.0, crown_y, 0.0]) + (crown_r - rr) * direction
            parts.append(Part("plant", ellipsoid((rr, rr, rr), tuple(centre), subdivisions=2), plant_c))
    elif plant == "cactus":
        cr = 0.35 * r
        parts.append(Part("plant", translate(trimesh.creation.capsule(height=max(top_h - 2 * cr, 0.01), radius=cr, count=[10, 6]).apply_transform(_Z_TO_Y), (0, soil_y + top_h / 2, 0)), plant_c))
        for k in range(min(n_leaves, 3) - 1):
            side = (-1) ** k
            y = soil_y + top_h * (0.35 + 0.15 * k)
            path = np.array([[0.0, y, 0.0], [side * 1.6 * cr, y, 0.0], [side * 1.6 * cr, y + 0.3 * top_h, 0.0]])
            parts.append(Part("plant", tube(path, 0.45 * cr, 8), plant_c))
    elif plant == "grass":
        for k in range(n_leaves * 2):
            a = 2 * np.pi * k / (n_leaves * 2) + leaf_rng.uniform(-0.2, 0.2)
            lean = leaf_rng.uniform(0.2, 0.6) * r
            base = np.array([0.2 * r * np.cos(a), soil_y, 0.2 * r * np.sin(a)])
            tip = np.array([lean * np.cos(a), h, lean * np.sin(a)])
            mid = 0.5 * (base + tip) + np.array([0.0, 0.0, 0.0])
            parts.append(Part("plant", tube(np.stack([base, mid, tip]), np.array([0.008, 0.006, 0.001]), 6), plant_c))
    return parts


def _book(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    cover_t = p.uniform("cover_thickness", 0.0015, 0.004)
    inset = p.uniform("page_inset", 0.002, 0.008)
    spine = p.choice("spine", ["flat", "rounded"])
    cover_c = p.colour("cover_colour", FABRIC + PAINT)
    page_c = p.colour("page_colour", PAPER, jitter=0.03)
    parts = [Part("cover", box_from_bounds((-w / 2, 0.0, -d / 2), (w / 2, cover_t, d / 2)), cover_c),
             Part("cover", box_from_bounds((-w / 2, h - cover_t, -d / 2), (w / 2, h, d / 2)), cover_c),
             Part("pages", box_from_bounds((-w / 2 + cover_t, cover_t, -d / 2 + inset), (w / 2 - inset, h - cover_t, d / 2 - inset)), page_c)]
    if spine == "flat":
        parts.append(Part("spine", box_from_bounds((-w / 2, 0.0, -d / 2), (-w / 2 + cover_t, h, d / 2)), cover_c))
    else:
        r = h / 2
        half = trimesh.creation.cylinder(radius=r, height=d, sections=16)  # along z
        half.apply_scale([0.35, 1.0, 1.0])
        parts.append(Part("spine", translate(half, (-w / 2 + 0.35 * r * 0.6, h / 2, 0.0)), cover_c))
    return parts


def _box(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, d = p.dims(prior)
    lid = p.choice("lid", ["cap", "flaps", "open"])
    lid_h = p.uniform("lid_height_fraction", 0.1, 0.3) * h
    tape = p.flag("tape", 0.5)
    wall = p.uniform("wall_thickness", 0.004, 0.012)
    body_c = p.colour("body_colour", CARDBOARD + PAINT)
    lid_c = p.colour("lid_colour", CARDBOARD + PAINT)
    tape_c = p.colour("tape_colour", [(200, 180, 120), (220, 220, 220)])
    parts = []
    if lid == "cap":
        parts.append(Part("body", box_from_bounds((-w / 2 + 0.004, 0.0, -d / 2 + 0.004), (w / 2 - 0.004, h - lid_h * 0.5, d / 2 - 0.004)), body_c))
        parts.append(Part("lid", box_from_bounds((-w / 2, h - lid_h, -d / 2), (w / 2, h, d / 2)), lid_c))
        if tape:
            parts.append(Part("tape", box_from_bounds((-0.02, h - lid_h - 0.001, -d / 2 - 0.001), (0.02, h + 0.001, d / 2 + 0.001)), tape_c))
        return parts
    body_h = h if lid == "open" else h * 0.8
    parts.append(Part("body", box_from_bounds((-w / 2, 0.0, -d / 2), (w / 2, wall, d / 2)), body_c))
    parts.append(Part("body", box_from_bounds((-w / 2, 0.0, -d / 2), (-w / 2 + wall, body_h, d / 2)), body_c))
    parts.append(Part("body", box_from_bounds((w / 2 - wall, 0.0, -d / 2), (w / 2, body_h, d / 2)), body_c))
    parts.append(Part("body", box_from_bounds((-w / 2 + wall, 0.0, -d / 2), (w / 2 - wall, body_h, -d / 2 + wall)), body_c))
    parts.append(Part("body", box_from_bounds((-w / 2 + wall, 0.0, d / 2 - wall), (w / 2 - wall, body_h, d / 2)), body_c))
    if lid == "flaps":
        fl = h - body_h
        for axis, sign in (("x", -1), ("x", 1), ("z", -1), ("z", 1)):
            if axis == "x":
                flap = box_from_bounds((-w / 2, body_h, -wall / 2), (w / 2, body_h + fl, wall / 2))
                flap.apply_translation((0, 0, sign * (d / 2 - wall / 2)))
                pivot = (0.0, body_h, sign * (d / 2 - wall / 2))
                _rotate_x(flap, sign * np.radians(35.0), pivot)
            else:
                flap = box_from_bounds((-wall / 2, body_h, -d / 2), (wall / 2, body_h + fl, d / 2))
                flap.apply_translation((sign * (w / 2 - wall / 2), 0, 0))
                flap.apply_transform(trimesh.transformations.rotation_matrix(-sign * np.radians(35.0), [0, 0, 1], (sign * (w / 2 - wall / 2), body_h, 0.0)))
            parts.append(Part("lid", flap, lid_c))
    return parts


def _teapot(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, _, _ = p.dims(prior)  # the height follows from the body's squash
    squash = p.uniform("body_squash", 0.6, 1.0)
    spout_len = p.uniform("spout_length", 0.6, 1.2)
    spout_rise = p.uniform("spout_rise", 0.3, 0.9)
    handle = p.choice("handle_style", ["side", "top"])
    knob = p.choice("knob", ["ball", "cone"])
    body_c = p.colour("body_colour", CERAMIC + METAL)
    lid_c = p.colour("lid_colour", CERAMIC + METAL)
    behind = 0.95 + 0.6 * squash + 0.06 if handle == "side" else 1.0  # body + handle reach on -x, in r
    r = w / (1.0 + 1.09 * spout_len + behind)  # spout tip (r + spout + its radius) on +x
    bh = 2 * r * squash
    a = np.linspace(-np.pi / 2, np.pi / 2, 10)
    prof = np.column_stack([r * np.cos(a), bh / 2 + bh / 2 * np.sin(a)])
    prof[0] = [0.0, 0.0]
    prof = np.vstack([[[0.0, 0.0]], [[0.6 * r, 0.0]], prof[2:-1], [[0.55 * r, bh], [0.0, bh]]])
    parts = [Part("body", revolve_y(prof, 24), body_c),
             Part("lid", frustum_y(0.6 * r, 0.45 * r, 0.08 * bh, bh - 0.005, sections=20), lid_c)]
    lid_top = bh + 0.08 * bh - 0.005
    if knob == "ball":
        parts.append(Part("lid", ellipsoid((0.12 * r, 0.12 * r, 0.12 * r), (0.0, lid_top + 0.1 * r, 0.0)), lid_c))
    else:
        parts.append(Part("lid", frustum_y(0.15 * r, 0.03 * r, 0.25 * r, lid_top - 0.002, sections=12), lid_c))
    sl = spout_len * r
    spout = np.array([[0.7 * r, 0.3 * bh, 0.0], [r + 0.4 * sl, 0.45 * bh, 0.0],
                      [r + 0.8 * sl, (0.45 + 0.4 * spout_rise) * bh, 0.0], [r + sl, (0.5 + 0.5 * spout_rise) * bh, 0.0]])
    parts.append(Part("spout", tube(spout, np.array([0.22, 0.14, 0.1, 0.09]) * r, 10), body_c))
    if handle == "side":
        path = arc_points(np.array([-r * 0.95, 0.55 * bh, 0.0]), 0.3 * bh, 90, 270, [1, 0, 0], [0, 1, 0], 12)
        path = path + np.array([-0.0, 0, 0])
        parts.append(Part("handle", tube(path, 0.06 * r, 8), body_c))
    else:
        path = arc_points(np.array([0.0, lid_top, 0.0]), 0.8 * r, 0, 180, [1, 0, 0], [0, 1, 0], 14)
        parts.append(Part("handle", tube(path, 0.05 * r, 8), METAL[2]))
    return parts


def _bin(p: ParamSampler, prior: SizePrior) -> list[Part]:
    w, h, _ = p.dims(prior)
    shape = p.choice("shape", ["round", "square"])
    taper = p.uniform("taper", 0.7, 1.0)
    lid = p.flag("lid", 0.5)
    pedal = p.flag("pedal", 0.4)
    body_c = p.colour("body_colour", PLASTIC + METAL)
    lid_c = p.colour("lid_colour", PLASTIC + METAL)
    r = w / 2
    lid_h = 0.04 if lid else 0.0
    body_h = h - lid_h
    parts = []
    if shape == "round":
        outer = np.array([[r * taper, 0.0], [r, body_h]])
        parts.append(Part("body", revolve_y(hollow_vessel_profile(outer, 0.006, 0.01), 24), body_c))
        if lid:
            parts.append(Part("lid", frustum_y(r + 0.005, r * 0.9, lid_h, body_h, sections=24), lid_c))
    else:
        wall = 0.008
        rb = r * taper
        for side in range(4):  # four tapered walls, each the hull of its 8 corners
            outer_b, outer_t = rb, r
            corners = []
            for y, rr in ((0.0, outer_b), (body_h, outer_t)):
                for inner in (0.0, wall):
                    q = rr - inner
                    corners += [(q, y, -rr), (q, y, rr)]
            pts = np.array(corners)
            rot = trimesh.transformations.rotation_matrix(side * np.pi / 2, [0, 1, 0])
            parts.append(Part("body", translate(convex_hull(pts).apply_transform(rot), (0, 0, 0)), body_c))
        parts.append(Part("body", box_from_bounds((-rb, 0.0, -rb), (rb, 0.01, rb)), body_c))
        if lid:
            parts.append(Part("lid", box_from_bounds((-r - 0.005, body_h, -r - 0.005), (r + 0.005, h, r + 0.005)), lid_c))
    if pedal:
        parts.append(Part("pedal", box_from_bounds((-0.05, 0.0, r * taper - 0.01), (0.05, 0.025, r * taper + 0.06)), METAL[2]))
    return parts


# --------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class CategorySpec:
    """One category: generator, size prior and tags.

    build : (ParamSampler, SizePrior) -> list[Part], object standing on y=0, centred in x/z.
    tags : subset of {"floor", "stackable", "support"}: stands on the floor in layouts, can be
        placed on a support's top, offers a flat top for stacking.
    shape_variants : pairs of overrides that must give different shapes (not only sizes).
    """

    name: str
    build: Callable[[ParamSampler, SizePrior], list[Part]]
    size_prior: SizePrior
    tags: frozenset[str]
    shape_variants: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...] = field(default_factory=tuple)


def _spec(name: str, build: Callable[[ParamSampler, SizePrior], list[Part]], low: Sequence[float],
          high: Sequence[float], tags: str, *variants: tuple[Mapping[str, Any], Mapping[str, Any]]) -> CategorySpec:
    return CategorySpec(name, build, SizePrior(np.array(low), np.array(high)), frozenset(tags.split()), tuple(variants))


REGISTRY: dict[str, CategorySpec] = {s.name: s for s in [
    _spec("table", _table, (0.8, 0.68, 0.6), (1.8, 0.78, 1.0), "floor support",
          ({"base": "four_legs"}, {"base": "pedestal"}), ({"top_shape": "rectangle"}, {"top_shape": "ellipse"}),
          ({"base": "four_legs", "leg_taper": 1.0}, {"base": "four_legs", "leg_taper": 0.5})),
    _spec("desk", _desk, (1.0, 0.72, 0.5), (1.6, 0.78, 0.8), "floor support",
          ({"drawer_unit": "none"}, {"drawer_unit": "left"}), ({"support": "legs"}, {"support": "panels"})),
    _spec("chair", _chair, (0.4, 0.75, 0.42), (0.55, 1.05, 0.55), "floor",
          ({"arm_rests": False}, {"arm_rests": True}), ({"back_style": "solid"}, {"back_style": "slats"}),
          ({"base": "four_legs"}, {"base": "swivel"}),
          ({"base": "four_legs", "leg_thickness": 0.025}, {"base": "four_legs", "leg_thickness": 0.06})),
    _spec("stool", _stool, (0.3, 0.45, 0.3), (0.45, 0.8, 0.45), "floor",
          ({"leg_count": 3}, {"leg_count": 4}), ({"footrest": False}, {"footrest": True}),
          ({"seat_shape": "round"}, {"seat_shape": "square"})),
    _spec("bench", _bench, (1.0, 0.38, 0.3), (1.8, 0.95, 0.5), "floor",
          ({"backrest": False}, {"backrest": True}), ({"support": "four_legs"}, {"support": "panels"})),
    _spec("sofa", _sofa, (1.4, 0.7, 0.8), (2.4, 0.95, 1.0), "floor",
          ({"arm_style": "none"}, {"arm_style": "high"}), ({"feet": False}, {"feet": True}),
          ({"seat_cushions": 1}, {"seat_cushions": 3})),
    _spec("bed", _bed, (0.9, 0.6, 1.9), (1.9, 1.6, 2.2), "floor",
          ({"footboard": False}, {"footboard": True}), ({"headboard_style": "panel"}, {"headboard_style": "posts"})),
    _spec("shelf", _shelf, (0.6, 0.8, 0.25), (1.2, 2.0, 0.4), "floor",
          ({"shelf_count": 2}, {"shelf_count": 6}), ({"back_panel": False}, {"back_panel": True})),
    _spec("cabinet", _make_cabinet(["doors", "drawers"]), (0.5, 0.6, 0.35), (1.2, 1.2, 0.6), "floor",
          ({"front": "doors"}, {"front": "drawers"}), ({"base": "plinth"}, {"base": "legs"})),
    _spec("nightstand", _make_cabinet(["drawers", "doors"]), (0.35, 0.45, 0.3), (0.55, 0.65, 0.45), "floor support",
          ({"front": "drawers", "drawer_count": 1}, {"front": "drawers", "drawer_count": 3}), ({"base": "plinth"}, {"base": "legs"})),
    _spec("wardrobe", _make_cabinet(["doors"]), (0.8, 1.8, 0.5), (1.6, 2.2, 0.65), "floor",
          ({"door_count": 1}, {"door_count": 2}), ({"handle_style": "bar"}, {"handle_style": "knob"})),
    _spec("lamp", _lamp, (0.15, 0.3, 0.15), (0.45, 0.65, 0.45), "stackable",
          ({"shade_shape": "cone"}, {"shade_shape": "dome"}), ({"stem": "straight"}, {"stem": "bent"})),
    _spec("floor_lamp", _lamp, (0.25, 1.3, 0.25), (0.6, 1.8, 0.6), "floor",
          ({"shade_shape": "cone"}, {"shade_shape": "cylinder"}), ({"base_shape": "disc"}, {"base_shape": "cone"})),
    _spec("monitor", _monitor, (0.45, 0.25, 0.15), (0.85, 0.6, 0.25), "stackable",
          ({"stand": "column"}, {"stand": "arm"}), ({"base_shape": "round"}, {"base_shape": "rectangle"})),
    _spec("tv", _tv, (0.9, 0.55, 0.25), (1.6, 1.0, 0.3), "stackable floor",
          ({"stand": "feet"}, {"stand": "pedestal"}),
          ({"stand": "pedestal", "base_shape": "round"}, {"stand": "pedestal", "base_shape": "rectangle"})),
    _spec("laptop", _laptop, (0.3, 0.15, 0.2), (0.4, 0.3, 0.45), "stackable",
          ({"lid_angle_deg": 90.0}, {"lid_angle_deg": 130.0})),
    _spec("mug", _mug, (0.09, 0.08, 0.07), (0.15, 0.12, 0.1), "stackable",
          ({"handle_shape": "round"}, {"handle_shape": "square"}), ({"taper": 0.8}, {"taper": 1.25})),
    _spec("cup", _cup, (0.06, 0.08, 0.06), (0.09, 0.18, 0.09), "stackable",
          ({"stem": False}, {"stem": True}), ({"taper": 0.6}, {"taper": 1.0})),
    _spec("bottle", _bottle, (0.06, 0.2, 0.06), (0.1, 0.35, 0.1), "stackable",
          ({"body_shape": "straight"}, {"body_shape": "flask"}), ({"shoulder_fraction": 0.5}, {"shoulder_fraction": 0.8})),
    _spec("bowl", _bowl, (0.12, 0.05, 0.12), (0.28, 0.12, 0.28), "stackable",
          ({"foot_ring": False}, {"foot_ring": True}), ({"wall_curvature": 1.2}, {"wall_curvature": 3.0})),
    _spec("plate", _plate, (0.18, 0.015, 0.18), (0.3, 0.035, 0.3), "stackable",
          ({"rim_style": "flat"}, {"rim_style": "sloped"}), ({"base_radius_ratio": 0.4}, {"base_radius_ratio": 0.7})),
    _spec("vase", _vase, (0.08, 0.18, 0.08), (0.25, 0.5, 0.25), "stackable",
          ({"style": "cylinder"}, {"style": "amphora"}), ({"style": "trumpet", "neck_ratio": 0.3}, {"style": "trumpet", "neck_ratio": 0.7})),
    _spec("plant_pot", _plant_pot, (0.12, 0.15, 0.12), (0.4, 0.9, 0.4), "stackable floor",
          ({"plant": "none"}, {"plant": "cactus"}), ({"plant": "bush"}, {"plant": "grass"}), ({"taper": 0.6}, {"taper": 1.0})),
    _spec("book", _book, (0.13, 0.015, 0.18), (0.22, 0.06, 0.28), "stackable",
          ({"spine": "flat"}, {"spine": "rounded"}), ({"page_inset": 0.002}, {"page_inset": 0.008})),
    _spec("box", _box, (0.1, 0.08, 0.1), (0.6, 0.5, 0.5), "stackable floor",
          ({"lid": "cap"}, {"lid": "open"}), ({"lid": "open"}, {"lid": "flaps"})),
    _spec("teapot", _teapot, (0.18, 0.09, 0.09), (0.3, 0.25, 0.2), "stackable",
          ({"handle_style": "side"}, {"handle_style": "top"}), ({"spout_length": 0.6}, {"spout_length": 1.2})),
    _spec("bin", _bin, (0.2, 0.3, 0.2), (0.45, 0.75, 0.45), "floor",
          ({"shape": "round"}, {"shape": "square"}), ({"lid": False}, {"lid": True})),
]}

CATEGORIES: tuple[str, ...] = tuple(REGISTRY)


def categories_with_tag(tag: str) -> tuple[str, ...]:
    """Category names carrying ``tag`` ("floor", "stackable" or "support")."""
    if tag not in {"floor", "stackable", "support"}:
        raise InputError(None, f"unknown category tag {tag!r}; allowed: floor, stackable, support")
    return tuple(name for name, spec in REGISTRY.items() if tag in spec.tags)


def _spec_for(category: str) -> CategorySpec:
    if category not in REGISTRY:
        raise InputError(None, f"unknown asset category {category!r}; categories are {', '.join(CATEGORIES)}")
    return REGISTRY[category]


def generate_asset(category: str, seed: int | np.random.Generator = 0, **overrides: Any) -> Asset:
    """Build one procedural asset.

    category : a name in :data:`CATEGORIES`.
    seed : an int (the key records it) or a numpy Generator (an int seed is drawn from it, so the
        result is still reproducible from the generator's state).
    overrides : fixed parameter values (names as in ``asset.params``); a bad name or a value out of
        range raises :class:`InputError` naming the value and the allowed range.
    """
    spec = _spec_for(category)
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2 ** 63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(None, f"asset seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    sampler = ParamSampler(np.random.default_rng(int(seed)), category, overrides)
    parts = spec.build(sampler, spec.size_prior)
    sampler.check_overrides_used()
    mesh, part_ids, names = assemble(parts)
    fit = _fit_to_prior(mesh, spec.size_prior)
    key = f"procedural/{category}/seed={int(seed)}"
    if overrides:
        digest = hashlib.sha1(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:10]
        key += f"/overrides={digest}"
    mesh.metadata["name"] = key
    params = {"seed": int(seed), **sampler.params, "fit_scale": fit}
    return Asset(mesh, part_ids, names, category, params, spec.size_prior, key)


def _fit_to_prior(mesh: trimesh.Trimesh, prior: SizePrior) -> list[float]:
    """Scale each axis of the (origin-centred) mesh in place so its bounding box lies inside the size
    prior; returns the (3,) per-axis factors (1.0 where the side already fits).

    Generators draw their main dimensions from the prior, but protruding parts (a mug's handle, a
    tilted chair back, door handles, an open laptop lid) can push a side a little past it; this
    keeps every asset's box within its category's real-world range."""
    extents = np.asarray(mesh.extents, dtype=np.float64)
    target = np.clip(extents, prior.low, prior.high)
    factors = np.where(extents > 0, target / np.maximum(extents, 1e-12), 1.0)
    if np.any(np.abs(factors - 1.0) > 1e-12):
        mesh.apply_transform(np.diag([*factors, 1.0]))
        mesh.apply_translation(-mesh.bounds.mean(axis=0))
    return [float(f) for f in factors]


def size_prior(category: str) -> SizePrior:
    """The real-world size range (metres) of a registered category."""
    return _spec_for(category).size_prior
