// mixed_args: every by-value argument type, stored back so kernarg layout is checked end to
// end: out[0] = c, [1] = uc, [2] = s, [3] = us, [4] = i, [5] = ui, [6..7] = l, [8..9] = ul,
// [10] = f bits, [11..12] = d bits, [13] = p.a, [14] = p.b, [15..16] = p.c bits, [17] = v.x
// + v.y + v.z + v.w (int4). Written by work-item 0 only.
#include "ids.h"

struct pod {
  int a;
  char b;
  double c;
};

__kernel void mixed_args(__global uint *out, char c, uchar uc, short s, ushort us, int i,
                         uint ui, long l, ulong ul, float f, double d, struct pod p,
                         int4 v) {
  if (global_id(0) != 0)
    return;
  out[0] = (uint)(int)c;
  out[1] = uc;
  out[2] = (uint)(int)s;
  out[3] = us;
  out[4] = (uint)i;
  out[5] = ui;
  out[6] = (uint)l;
  out[7] = (uint)((ulong)l >> 32);
  out[8] = (uint)ul;
  out[9] = (uint)(ul >> 32);
  out[10] = as_uint(f);
  out[11] = (uint)as_ulong(d);
  out[12] = (uint)(as_ulong(d) >> 32);
  out[13] = (uint)p.a;
  out[14] = (uint)(int)p.b;
  out[15] = (uint)as_ulong(p.c);
  out[16] = (uint)(as_ulong(p.c) >> 32);
  out[17] = (uint)(v.x + v.y + v.z + v.w);
}
