"""GLSL 330 sources of the rasteriser: one program for surfaces, one full-screen pass for the ground and sky.

The surface program writes a linear depth (camera z / far) to the depth buffer, so the depth test has the
same precision near and far (no z-fighting where objects touch the ground). Both write the same four targets: 0 RGB (rgba8), 1 camera z in metres (r32f), 2 instance id (r16ui),
3 camera-frame normal (rgba32f; attached only when normals are requested, which saves llvmpipe a
third of the bytes per pixel otherwise). Geometry is drawn in the OpenCV camera frame (see projection.py).
"""

SURFACE_VERTEX = """
#version 330
uniform mat4 P;            // OpenCV camera frame -> clip
uniform mat4 T_cam_obj;    // object -> camera, may include scale
uniform mat3 N_cam_obj;    // inverse-transpose of the linear part
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_colour;
out vec3 v_pos_cam;
out vec3 v_normal_cam;
out vec3 v_colour;
void main() {
    vec4 p = T_cam_obj * vec4(in_pos, 1.0);
    v_pos_cam = p.xyz;
    v_normal_cam = N_cam_obj * in_normal;
    v_colour = in_colour;
    gl_Position = P * p;
}
"""

SURFACE_FRAGMENT = """
#version 330
uniform vec3 light_cam;     // unit direction towards the light, camera frame
uniform float ambient;
uniform float diffuse;
uniform uint instance_id;
uniform float far_plane;    // metres; the depth test runs on linear z / far (uniform precision)
in vec3 v_pos_cam;
in vec3 v_normal_cam;
in vec3 v_colour;
layout(location = 0) out vec4 out_rgb;
layout(location = 1) out float out_depth;
layout(location = 2) out uint out_id;
layout(location = 3) out vec4 out_normal;   // no attachment (writes dropped) unless normals are asked for
void main() {
    vec3 n = normalize(v_normal_cam);
    if (dot(n, v_pos_cam) > 0.0) n = -n;      // two-sided: face the camera
    vec3 albedo = v_colour;
    float lambert = max(dot(n, light_cam), 0.0);
    out_rgb = vec4(clamp(albedo * (ambient + diffuse * lambert), 0.0, 1.0), 1.0);
    out_depth = v_pos_cam.z;
    out_normal = vec4(n, 0.0);
    out_id = instance_id;
    gl_FragDepth = v_pos_cam.z / far_plane;
}
"""

BACKGROUND_VERTEX = """
#version 330
uniform mat3 K_inv;          // pixel -> camera ray with z = 1
uniform mat3 R_world_cam;
uniform vec2 image_size;     // W, H
noperspective out vec2 v_pixel;
noperspective out vec3 v_ray_world;
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));   // (0,0) (2,0) (0,2)
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
    // OpenCV pixel at this corner (window coordinate - 0.5; rows are not flipped); both the pixel
    // and its camera ray are affine in screen space, so interpolating them is exact
    v_pixel = corner * image_size - 0.5;
    v_ray_world = R_world_cam * (K_inv * vec3(v_pixel, 1.0));
}
"""

# Full-screen pass: each pixel's ray hits the ground plane (analytically, exact depth) or the sky.
BACKGROUND_FRAGMENT = """
#version 330
uniform vec3 cam_pos_world;
uniform float far_plane;
uniform vec3 zenith;
uniform vec3 horizon;
uniform vec3 nadir;
uniform int backdrop_kind;   // 0 sky by ray elevation, 1 solid, 2 vertical gradient, 3 radial gradient
uniform vec3 colour_a;
uniform vec3 colour_b;
uniform vec2 image_size;     // W, H
uniform bool has_ground;
uniform float ground_y;
uniform vec2 ground_centre;  // world x, z
uniform float ground_half_extent;
uniform vec3 ground_colour;
uniform bool textured;
uniform sampler2D albedo_texture;
uniform float tile_size;
uniform vec2 texture_origin; // world x, z of the texture's row 0, column 0
uniform float ground_shade;  // ambient + diffuse * max(n . l, 0) for the ground's side facing the camera
uniform vec3 ground_normal_cam;
noperspective in vec2 v_pixel;
noperspective in vec3 v_ray_world;
layout(location = 0) out vec4 out_rgb;
layout(location = 1) out float out_depth;
layout(location = 2) out uint out_id;
layout(location = 3) out vec4 out_normal;   // no attachment (writes dropped) unless normals are asked for
void main() {
    vec3 ray_world = v_ray_world;
    vec3 sky;
    if (backdrop_kind == 0) {
        float up = normalize(ray_world).y;
        sky = up >= 0.0 ? mix(horizon, zenith, sqrt(up)) : mix(horizon, nadir, sqrt(-up));
    } else if (backdrop_kind == 1) {
        sky = colour_a;
    } else if (backdrop_kind == 2) {
        sky = mix(colour_a, colour_b, v_pixel.y / max(image_size.y - 1.0, 1.0));
    } else {
        vec2 d = (v_pixel - 0.5 * (image_size - 1.0)) / max(0.5 * image_size, vec2(1.0));
        sky = mix(colour_a, colour_b, clamp(length(d) / sqrt(2.0), 0.0, 1.0));
    }
    // ray parameter t is the camera z of the hit, since the camera-frame ray has z = 1
    float height = cam_pos_world.y - ground_y;
    float t = ray_world.y != 0.0 ? -height / ray_world.y : -1.0;
    vec2 hit_xz = cam_pos_world.xz + max(t, 0.0) * ray_world.xz;
    vec3 albedo = ground_colour;
    if (textured) {                           // uniform branch: texture derivatives stay defined
        albedo = texture(albedo_texture, (hit_xz - texture_origin) / tile_size).rgb;
    }
    bool inside = all(lessThanEqual(abs(hit_xz - ground_centre), vec2(ground_half_extent)));
    if (has_ground && t > 0.0 && t < far_plane && inside) {
        out_rgb = vec4(clamp(albedo * ground_shade, 0.0, 1.0), 1.0);
        out_depth = t;
        out_normal = vec4(ground_normal_cam, 0.0);
        gl_FragDepth = t / far_plane;
    } else {
        out_rgb = vec4(sky, 1.0);
        out_depth = 0.0;
        out_normal = vec4(0.0);
        gl_FragDepth = 1.0;
    }
    out_id = 0u;
}
"""
