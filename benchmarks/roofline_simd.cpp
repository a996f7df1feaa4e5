// The forward kernel's per-lane arithmetic (benchmarks/render.py `_roofline_forward`) written
// with explicit 16-wide float32 vectors (GCC/Clang vector extensions), compiled by
// benchmarks/kernel_language.py with -O3 -march=native: what a hand-vectorised C++ kernel would
// reach on the same work, set against numba's loop. Same maths, same rounding choices (fused
// multiply-adds; exp by the Cephes polynomial with 2^n from the exponent bits).
#include <stdint.h>
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
static inline v16f splat(float x) { return (v16f){x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x}; }
static inline v16f vmin(v16f a, v16f b) { return a < b ? a : b; }
static inline v16f vmax(v16f a, v16f b) { return a > b ? a : b; }
static inline v16f exp_neg(v16f s) {
    s = vmin(vmax(s, splat(0.0f)), splat(20.0f));
    v16f t = s * splat(-1.4426950408889634f) + splat(0.5f);
    v16i ni = __builtin_convertvector(t, v16i);               /* trunc */
    v16f nf = __builtin_convertvector(ni, v16f);
    v16i adj = (v16i)(nf > t);                                  /* floor for negatives */
    ni = ni + adj;                                              /* adj is -1 where true */
    v16f n = __builtin_convertvector(ni, v16f);
    v16f r = (-s - n * splat(0.693359375f)) - n * splat(-2.12194440e-4f);
    v16f p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f); p = p * r + splat(8.3334519073e-3f); p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f); p = p * r + splat(5.0000001201e-1f);
    p = p * (r * r) + r + splat(1.0f);
    v16i bits = (ni + 127) << 23;
    return p * (v16f)bits;
}
extern "C" void roof(const float *params, const float *feats, float *state, int n, int reps) {
    v16u *T = (v16u *)state, *c0 = (v16u *)(state + 256), *c1 = (v16u *)(state + 512), *c2 = (v16u *)(state + 768),
         *c3 = (v16u *)(state + 1024);
    const v16u *xc = (const v16u *)(state + 6*256), *yc = (const v16u *)(state + 7*256);
    for (int rep = 0; rep < reps; rep++) {
        for (int i = 0; i < 16; i++) T[i] = splat(1.0f);
        for (int g = 0; g < n; g++) {
            v16f mx = splat(params[g*6]), my = splat(params[g*6+1]), ca = splat(params[g*6+2]), cb = splat(params[g*6+3]),
                 cc = splat(params[g*6+4]), op = splat(params[g*6+5]);
            v16f f0 = splat(feats[g*4]), f1 = splat(feats[g*4+1]), f2 = splat(feats[g*4+2]), f3 = splat(feats[g*4+3]);
            for (int i = 0; i < 16; i++) {
                v16f dx = mx - xc[i], dy = my - yc[i];
                v16f sigma = splat(0.5f) * (ca*dx*dx + cc*dy*dy) + cb*dx*dy;
                v16f alpha = vmin(splat(0.999f), op * exp_neg(sigma));
                v16f t = T[i];
                v16f nt = t * (splat(1.0f) - alpha);
                v16i use = (sigma >= splat(0.0f)) & (alpha >= splat(1.0f/255.0f)) & (nt > splat(1e-4f));
                v16f w = use ? alpha * t : splat(0.0f);
                T[i] = use ? nt : t;
                c0[i] += w * f0; c1[i] += w * f1; c2[i] += w * f2; c3[i] += w * f3;
            }
        }
    }
}
