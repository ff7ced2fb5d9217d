"""A plain float64 numpy deformable convolution, written for clarity only.

Loops over output pixels' taps with the explicit bilinear formula of
torchvision's CPU kernel (channels-last). Used as the independent reference
for edvr_jax.ops.deform_conv2d.
"""

import numpy as np


def bilinear(img, y, x):
    """img (H, W, C) float64; zero outside, torchvision's rule."""
    h, w, _ = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return np.zeros(img.shape[-1])
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = y0 + 1, x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    out = np.zeros(img.shape[-1])
    for yy, xx, wgt in ((y0, x0, hy * hx), (y0, x1, hy * lx), (y1, x0, ly * hx), (y1, x1, ly * lx)):
        if 0 <= yy < h and 0 <= xx < w:
            out += wgt * img[yy, xx]
    return out


def deform_conv2d_ref(x, offset, mask, kernel, bias=None, stride=(1, 1), padding=(1, 1), dilation=(1, 1)):
    x = np.asarray(x, np.float64)
    offset = np.asarray(offset, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    taps = kh * kw
    _, ho, wo, oc = offset.shape
    g = oc // (2 * taps)
    cg = cin // g
    if mask is None:
        mask = np.ones((n, ho, wo, g * taps))
    mask = np.asarray(mask, np.float64)
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    out = np.zeros((n, ho, wo, cout))
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                col = np.zeros((kh, kw, cin))
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for gg in range(g):
                            dy = offset[b, oy, ox, gg * 2 * taps + 2 * k]
                            dx = offset[b, oy, ox, gg * 2 * taps + 2 * k + 1]
                            y = oy * sh - ph + i * dh + dy
                            xx = ox * sw - pw + j * dw + dx
                            v = bilinear(x[b, :, :, gg * cg:(gg + 1) * cg], y, xx)
                            col[i, j, gg * cg:(gg + 1) * cg] = mask[b, oy, ox, gg * taps + k] * v
                out[b, oy, ox] = np.einsum("ijc,ijco->o", col, kernel)
    if bias is not None:
        out += np.asarray(bias, np.float64)
    return out
