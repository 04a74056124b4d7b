"""Closed (watertight) mesh primitives for the procedural asset library, built in a y-up frame.

Every function returns a ``trimesh.Trimesh`` whose faces wind outwards (positive volume), in
metres. Revolved shapes take a profile of ``(radius, height)`` points and turn it about the y axis;
a profile that starts and ends on the axis (radius 0) gives a closed surface. Nothing here needs
shapely: prisms and tapered legs are convex hulls, tubes are swept rings with capped ends.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sceneforge.geometry.transforms import cross3

# Maps trimesh's revolve output (axis along z) to a y-up frame: (x, y, z) -> (x, z, -y).
_Z_TO_Y = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (cubic metres) enclosed by a closed triangle mesh: positive when its faces wind
    outwards (the divergence theorem over the tetrahedra from the origin to each face)."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    return float(np.einsum("ij,ij->", tri[:, 0], cross3(tri[:, 1], tri[:, 2]))) / 6.0


def _outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Flip the winding when the signed volume is negative, so normals point outwards."""
    if signed_volume(mesh.vertices, mesh.faces) < 0:
        mesh.invert()
    return mesh


def translate(mesh: trimesh.Trimesh, offset: np.ndarray | tuple[float, float, float]) -> trimesh.Trimesh:
    """Move ``mesh`` in place by ``offset`` (3,) metres (plain vertex addition: trimesh's general
    transform path costs several times more for the many parts of an asset)."""
    offset = np.asarray(offset, dtype=np.float64)
    if np.any(offset != 0.0):
        mesh.vertices = np.asarray(mesh.vertices) + offset
    return mesh


_UNIT_BOX = trimesh.creation.box()  # trimesh's cube of side 1 around the origin: its vertex and face order


def box(size: tuple[float, float, float], centre: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    """Axis-aligned box; size (x, y, z) metres around ``centre`` (trimesh's box, built directly:
    the same arrays without its face-normal checks, a third of an asset's build time)."""
    vertices = np.asarray(_UNIT_BOX.vertices) * np.asarray(size, dtype=np.float64)
    return translate(trimesh.Trimesh(vertices, np.array(_UNIT_BOX.faces), process=False), centre)


def box_from_bounds(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> trimesh.Trimesh:
    """Axis-aligned box between two corners (metres)."""
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return box(tuple(hi_a - lo_a), tuple((lo_a + hi_a) / 2.0))


def revolve_y(profile: np.ndarray, sections: int = 24) -> trimesh.Trimesh:
    """Surface of revolution about the y axis.

    profile : (N, 2) (radius, height) metres; start and end at radius 0 for a closed mesh.
    """
    profile = np.asarray(profile, dtype=np.float64)
    mesh = trimesh.creation.revolve(profile, sections=int(sections))
    mesh.vertices = np.asarray(mesh.vertices) @ _Z_TO_Y[:3, :3].T  # a rotation: winding unchanged
    return _outward(mesh)


def frustum_y(r_bottom: float, r_top: float, height: float, y0: float = 0.0,
              centre_xz: tuple[float, float] = (0.0, 0.0), sections: int = 16) -> trimesh.Trimesh:
    """Closed truncated cone along y from ``y0`` to ``y0 + height`` (a cylinder when radii agree)."""
    profile = [[0.0, 0.0], [r_bottom, 0.0], [r_top, height], [0.0, height]]
    mesh = revolve_y(np.array(profile), sections)
    return translate(mesh, (centre_xz[0], y0, centre_xz[1]))


def cylinder_between(a: np.ndarray, b: np.ndarray, radius: float, sections: int = 12) -> trimesh.Trimesh:
    """Closed cylinder whose axis runs from point ``a`` to point ``b`` (metres)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return _outward(trimesh.creation.cylinder(radius=radius, segment=np.stack([a, b]), sections=sections))


def convex_hull(points: np.ndarray) -> trimesh.Trimesh:
    """``trimesh.convex.convex_hull(points)``'s mesh (the same vertex and face arrays) for (N, 3) points.

    trimesh's function spends ~0.65 ms on an 8-point hull building an intermediate mesh and running
    repairs (vertex merging, winding and inversion fixes) that change nothing on a clean hull, against
    ~0.04 ms in Qhull. Here its own steps run on plain arrays (Qhull with its options, unreferenced
    vertices dropped, zero-area faces removed, faces turned away from the area-weighted centroid), and
    when any of those repairs could change the result (two vertices equal at trimesh's merge digits,
    an unreferenced vertex, a winding that is not closed and consistent, a volume not clearly positive)
    trimesh's function makes the mesh instead.
    """
    from scipy.spatial import ConvexHull, QhullError

    points = np.asarray(points, dtype=np.float64)
    try:
        qhull = ConvexHull(points, qhull_options=str(trimesh.convex.QHULL_DEFAULT))
    except (QhullError, ValueError):
        return trimesh.convex.convex_hull(points)
    vid = np.sort(qhull.vertices)
    mask = np.zeros(len(qhull.points), dtype=np.int64)
    mask[vid] = np.arange(len(vid))
    faces = mask[qhull.simplices].copy()
    vertices = qhull.points[vid].copy()
    crosses = trimesh.triangles.cross(vertices[faces])
    normals, valid = trimesh.util.unitize(crosses, check_valid=True)
    faces, crosses = faces[valid], crosses[valid]
    area = trimesh.triangles.area(crosses=crosses)
    centres = vertices[faces].mean(axis=1)
    if not area.sum() > 0:
        return trimesh.convex.convex_hull(points)
    centroid = np.average(centres, weights=area, axis=0)
    backwards = trimesh.util.diagonal_dot(normals, centres - centroid) < 0.0
    faces[backwards] = np.fliplr(faces[backwards])
    if not _clean_hull(vertices, faces):
        return trimesh.convex.convex_hull(points)
    return trimesh.Trimesh(vertices, faces, process=False)


def _clean_hull(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Whether trimesh's repairs of a new hull mesh (merging vertices equal at ``tol.merge``'s digits
    and unreferenced ones, fixing the winding, inverting a negative volume) leave these arrays as
    they are: every vertex referenced and distinct, every edge used once in each direction, and a
    volume clearly above zero."""
    if np.unique(faces).size != len(vertices):
        return False
    digits = trimesh.util.decimal_to_digits(trimesh.tol.merge)
    if len(np.unique((vertices * 10**digits).round().astype(np.int64), axis=0)) != len(vertices):
        return False
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).tolist()
    directed = set(map(tuple, edges))
    if len(directed) != len(edges) or any((b, a) not in directed for a, b in directed):
        return False
    return signed_volume(vertices, faces) > 1e-6 * float(np.prod(np.ptp(vertices, axis=0)))


def hull(points: np.ndarray) -> trimesh.Trimesh:
    """Convex hull of (N, 3) points: closed, outward (tapered legs, wedges, prisms)."""
    return _outward(convex_hull(points))


def tapered_box_y(bottom: tuple[float, float], top: tuple[float, float], y0: float, y1: float,
                  centre_xz: tuple[float, float] = (0.0, 0.0)) -> trimesh.Trimesh:
    """Square-section leg from ``y0`` to ``y1``; bottom/top are (x, z) sizes; the hull of 8 corners."""
    cx, cz = centre_xz
    pts = []
    for (sx, sz), y in ((bottom, y0), (top, y1)):
        for ix in (-0.5, 0.5):
            for iz in (-0.5, 0.5):
                pts.append((cx + ix * sx, y, cz + iz * sz))
    return hull(np.array(pts))


def prism_y(polygon_xz: np.ndarray, y0: float, y1: float) -> trimesh.Trimesh:
    """Extrusion of a convex (N, 2) x/z polygon between heights ``y0`` and ``y1``."""
    polygon_xz = np.asarray(polygon_xz, dtype=np.float64)
    lo = np.column_stack([polygon_xz[:, 0], np.full(len(polygon_xz), y0), polygon_xz[:, 1]])
    hi = lo.copy()
    hi[:, 1] = y1
    return hull(np.vstack([lo, hi]))


def ellipsoid(radii: tuple[float, float, float], centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
              subdivisions: int = 1) -> trimesh.Trimesh:
    """Closed ellipsoid (a scaled icosphere) with semi-axes ``radii`` (x, y, z) metres."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    mesh.apply_scale(np.asarray(radii, dtype=np.float64))
    return _outward(translate(mesh, centre))


def _perpendicular(v: np.ndarray) -> np.ndarray:
    helper = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    n = cross3(v, helper)
    return n / np.linalg.norm(n)


def tube(path: np.ndarray, radius: float | np.ndarray, sections: int = 8) -> trimesh.Trimesh:
    """A closed tube of circular section swept along a polyline, with flat end caps.

    path : (N, 3) metres, N >= 2, consecutive points distinct.
    radius : scalar or (N,) radius at each path point (a taper).
    """
    path = np.asarray(path, dtype=np.float64)
    n = len(path)
    radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
    seg = np.diff(path, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    tangents = np.vstack([seg[:1], seg[:-1] + seg[1:], seg[-1:]])
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normal = _perpendicular(tangents[0])
    angles = np.linspace(0.0, 2.0 * np.pi, sections, endpoint=False)
    rings = []
    for i in range(n):
        t = tangents[i]
        normal = normal - t * (normal @ t)  # parallel transport: keep the previous normal, made perpendicular
        normal /= np.linalg.norm(normal)
        binormal = cross3(t, normal)
        ring = path[i] + radii[i] * (np.cos(angles)[:, None] * normal + np.sin(angles)[:, None] * binormal)
        rings.append(ring)
    verts = np.vstack(rings + [path[:1], path[-1:]])
    faces = []
    for i in range(n - 1):
        for k in range(sections):
            a, b = i * sections + k, i * sections + (k + 1) % sections
            c, d = a + sections, b + sections
            faces += [[a, b, d], [a, d, c]]
    start, end = n * sections, n * sections + 1
    for k in range(sections):
        faces.append([start, (k + 1) % sections, k])
        faces.append([end, (n - 1) * sections + k, (n - 1) * sections + (k + 1) % sections])
    return _outward(trimesh.Trimesh(verts, np.array(faces), process=False))


def arc_points(centre: np.ndarray, radius: float, start_deg: float, end_deg: float, axis_u: np.ndarray,
               axis_v: np.ndarray, count: int = 10) -> np.ndarray:
    """(count, 3) points on a circular arc ``centre + r (cos a u + sin a v)`` from start to end degrees."""
    a = np.radians(np.linspace(start_deg, end_deg, count))
    return (np.asarray(centre, dtype=np.float64) + radius * (np.cos(a)[:, None] * np.asarray(axis_u, dtype=np.float64)
            + np.sin(a)[:, None] * np.asarray(axis_v, dtype=np.float64)))


def hollow_vessel_profile(outer: np.ndarray, wall: float, bottom: float) -> np.ndarray:
    """Closed (radius, height) profile of an open-top vessel with wall thickness ``wall``.

    outer : (N, 2) outer wall from the bottom rim (radius > 0, height 0) to the top rim, heights rising.
    The inner wall follows the outer one inset by ``wall`` down to a floor at height ``bottom``.
    Returns a profile that starts and ends on the axis (closed when revolved).
    """
    outer = np.asarray(outer, dtype=np.float64)
    inner = outer[::-1].copy()
    inner[:, 0] = np.maximum(inner[:, 0] - wall, wall * 0.5)
    inner = inner[inner[:, 1] > bottom + 1e-9]
    top = outer[-1]
    rim = np.array([[top[0], top[1]], [max(top[0] - wall, wall * 0.5), top[1]]])
    floor_r = max(float(np.interp(bottom, outer[:, 1], outer[:, 0])) - wall, wall * 0.5)
    return np.vstack([[[0.0, 0.0]], outer, rim[1:], inner[1:], [[floor_r, bottom]], [[0.0, bottom]]])
